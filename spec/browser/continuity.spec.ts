/**
 * A client that never loses its place (issue 22), in headless Chromium through a proxy: a page left
 * and come back to (or reloaded) resumes exactly; three tabs with `share: true` hold one parked poll
 * and survive the leader closing; tokens are refreshed before they expire without dropping the
 * WebSocket, while a client that cannot refresh is closed at expiry; an event stream a proxy starts
 * buffering is given up for long-polling, and the next page load goes straight to long-polling.
 */
import { expect } from 'chai';
import { SignJWT } from 'jose';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { sendAs } from '../support/api.js';
import { describeBrowser, launchBrowser } from '../support/browser.js';
import { startGateway, TEST_SECRET, type TestGateway } from '../support/gateway.js';
import { startProxy, type CuttingProxy } from '../support/proxy.js';
import { waitFor } from '../support/wait.js';

type Entry = [stream: string, seq: number, transport: string];

/** A page that loads the client from the gateway; window.start(options) starts it once and records what happens. */
function lifePage(gatewayUrl: string): string {
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><title>continuity</title></head><body>
<script src="${gatewayUrl}/pollgate.js"></script>
<script>
  window.log = []; window.transports = []; window.authErrors = []; window.tokens = 0;
  window.start = function (options) {
    if (window.client) return false;
    options.url = ${JSON.stringify(gatewayUrl)};
    if (options.refreshing) delete options.token;
    if (options.refreshing) options.getToken = function (cb) {
      window.tokens++;
      window.mintToken().then(function (t) { cb(null, t); });
    };
    var client = window.client = new Pollgate(options);
    transports.push(client.transport);
    client.on('message', function (m) { log.push([m.stream, m.seq, client.transport]); });
    client.on('transport', function (t) { transports.push(t); });
    client.on('auth_error', function (e) { authErrors.push(e.message); });
    return true;
  };
</script></body></html>`;
}

/** Init scripts run before any page script. */
const WITHOUT_WEBSOCKET = () => {
  (window as any).WebSocket = undefined;
};
const WITHOUT_PUSH = () => {
  (window as any).WebSocket = undefined;
  (window as any).EventSource = undefined;
};
/** Counts the WebSockets the page opens (window.sockets()). */
const COUNTING_WEBSOCKETS = () => {
  const Native = window.WebSocket;
  let opened = 0;
  (window as any).WebSocket = function (url: string) {
    opened++;
    return new Native(url);
  };
  (window as any).sockets = () => opened;
};

describeBrowser('a client that never loses its place (Chromium)', function () {
  this.timeout(60_000);
  let gw: TestGateway;
  let proxy: CuttingProxy;
  let browser: Browser;
  let token: string;
  const contexts: BrowserContext[] = [];

  before(async () => {
    // No clock tolerance: a token's exp is when the gateway closes its connections. Pings every
    // 200 ms, well inside what the pages below allow an event stream to be silent (1.5 s).
    gw = await startGateway({ auth: { clockToleranceSeconds: 0 }, sse: { keepAliveMs: 200 } });
    proxy = await startProxy(gw.url, { '/life.html': () => lifePage(proxy.url), '/elsewhere.html': () => '<!DOCTYPE html><title>elsewhere</title>' });
    token = await gw.token({ sub: 'continuity', streams: ['c:*'], pub: ['c:*'] });
    browser = await launchBrowser();
  });
  afterEach(async () => {
    proxy.allow('ws', 'sse', 'poll');
    while (contexts.length) await contexts.pop()!.close();
  });
  after(async () => {
    await browser?.close();
    await proxy?.close();
    await gw?.shutdown();
  });

  async function newContext(): Promise<BrowserContext> {
    const context = await browser.newContext();
    contexts.push(context);
    return context;
  }

  /** Opens the page in `context` (a tab), starts the client and resolves once it is online. */
  async function openTab(context: BrowserContext, options: Record<string, unknown>, init?: () => void): Promise<Page> {
    const page = await context.newPage();
    if (init) await page.addInitScript(init);
    await page.goto(`${proxy.url}/life.html`);
    await start(page, options);
    return page;
  }

  async function start(page: Page, options: Record<string, unknown>): Promise<boolean> {
    const fresh = await page.evaluate((o) => (window as any).start(o), { token, backoffBase: 50, backoffCap: 500, ...options });
    await page.waitForFunction(() => (window as any).client.state === 'online', null, { timeout: 20_000 });
    return fresh;
  }

  const logOf = (page: Page): Promise<Entry[]> => page.evaluate(() => (window as any).log);
  const received = (page: Page, n: number) => page.waitForFunction((want) => (window as any).log.length >= want, n, { timeout: 20_000 });
  const seqs = (entries: Entry[]) => entries.map((e) => e[1]);
  const send = async (stream: string, ...data: unknown[]) => {
    for (const d of data) await sendAs(gw.url, gw.apiKey, stream, d);
  };

  it('resumes exactly where it left off when the page is left and come back to, and when it is reloaded', async () => {
    const stream = 'c:resume';
    const options = { streams: [stream] };
    const page = await openTab(await newContext(), options);
    await send(stream, 1, 2, 3);
    await received(page, 3);
    const seen = await logOf(page);

    await page.goto(`${proxy.url}/elsewhere.html`);
    await send(stream, 4, 5, 6);
    await page.goBack();
    // A fresh page resumes from the cursor kept in sessionStorage; one restored from the
    // back-forward cache (it keeps its log) from the cursor it had.
    const restarted = await start(page, options);
    await received(page, restarted ? 3 : 6);
    seen.push(...(await logOf(page)).slice(restarted ? 0 : 3));

    await page.reload();
    await start(page, options);
    await send(stream, 7);
    await received(page, 1);
    seen.push(...(await logOf(page)));
    expect(seqs(seen)).to.deep.equal([1, 2, 3, 4, 5, 6, 7]);
  });

  it('shares one parked poll between three tabs with share: true, each gets every message once, and the leader closing hands over', async () => {
    const stream = 'c:shared';
    const context = await newContext();
    await context.addInitScript(WITHOUT_PUSH);
    const tabs: Page[] = [];
    for (let i = 0; i < 3; i++) tabs.push(await openTab(context, { streams: [stream], share: true, pollTimeout: 5 }));
    const leaders = async () => {
      const t = await Promise.all(tabs.map((p) => (p.isClosed() ? 'closed' : p.evaluate(() => (window as any).client.transport))));
      return tabs.filter((_, i) => t[i] === 'xhr');
    };
    const parked = async () => ((await (await fetch(`${gw.url}/stats`, { headers: { Authorization: `Bearer ${gw.apiKey}` } })).json()) as { parkedPolls: number }).parkedPolls;
    await waitFor(async () => (await leaders()).length === 1 && (await parked()) === 1, 'one leader holding one parked poll');

    await send(stream, 'a', 'b', 'c');
    for (const tab of tabs) await received(tab, 3);
    const [leader] = await leaders();
    await leader!.close();
    tabs.splice(tabs.indexOf(leader!), 1);
    await waitFor(async () => (await leaders()).length === 1 && (await parked()) === 1, 'a new leader holding one parked poll');

    await send(stream, 'd', 'e');
    for (const tab of tabs) {
      await received(tab, 5);
      expect(seqs(await logOf(tab))).to.deep.equal([1, 2, 3, 4, 5]);
    }
  });

  it('refreshes tokens before they expire: a WebSocket keeps its connection, SSE and long-poll their positions; a client that cannot refresh is closed at expiry', async () => {
    const stream = 'c:tokens';
    // Tokens living exactly 2 s (fractional iat and exp): refreshed after 1.5 s, expired at 2 s.
    const key = new TextEncoder().encode(TEST_SECRET);
    const mint = () => {
      const now = Date.now() / 1000;
      return new SignJWT({ streams: ['c:*'] }).setProtectedHeader({ alg: 'HS256' }).setSubject('refresher').setIssuedAt(now).setExpirationTime(now + 2).sign(key);
    };
    const context = await newContext();
    await context.exposeFunction('mintToken', mint);
    const options = { streams: [stream], token: undefined, refreshing: true, pollTimeout: 1, timeoutMargin: 1 };
    const ws = await openTab(context, options, COUNTING_WEBSOCKETS);
    const sse = await openTab(context, options, WITHOUT_WEBSOCKET);
    const xhr = await openTab(context, options, WITHOUT_PUSH);
    const fixed = await openTab(context, { streams: [stream], token: await mint() });

    await fixed.waitForFunction(() => (window as any).authErrors.length > 0, null, { timeout: 10_000 });
    expect(await fixed.evaluate(() => (window as any).authErrors[0])).to.equal('token expired');
    const refreshing = [ws, sse, xhr];
    for (const page of refreshing) await page.waitForFunction(() => (window as any).tokens >= 2, null, { timeout: 10_000 });
    await send(stream, 'after the first token expired');
    for (const page of refreshing) {
      await received(page, 1);
      expect(await page.evaluate(() => (window as any).authErrors)).to.deep.equal([]);
    }
    expect(await ws.evaluate(() => (window as any).sockets())).to.equal(1);
    expect((await Promise.all(refreshing.map((p) => p.evaluate(() => (window as any).transports))))).to.deep.equal([['websocket'], ['sse'], ['xhr']]);
  });

  it('falls back to long-polling when a proxy starts buffering the event stream, and the next page load goes straight to long-polling', async () => {
    const stream = 'c:buffered';
    // An event stream silent for pollTimeout + timeoutMargin (1.5 s) is not getting through.
    const options = { streams: [stream], pollTimeout: 1, timeoutMargin: 0.5, upgradeInterval: 0 };
    const page = await openTab(await newContext(), options, WITHOUT_WEBSOCKET);
    expect(await page.evaluate(() => (window as any).client.transport)).to.equal('sse');
    // Ten pings (2 s) on a healthy stream: longer than the client lets one be silent.
    const pings = proxy.delivered.sse;
    await waitFor(() => proxy.delivered.sse >= pings + 10 * 'event: ping\ndata: {}\n\n'.length, 'ten pings', 10_000);
    expect(await page.evaluate(() => (window as any).transports)).to.deep.equal(['sse']);

    proxy.buffer('sse');
    await send(stream, 'held back by the proxy');
    await received(page, 1);
    expect(await logOf(page)).to.deep.equal([[stream, 1, 'xhr']]);
    expect(await page.evaluate(() => (window as any).transports)).to.deep.equal(['sse', 'xhr']);

    const streamsBefore = proxy.passed.sse;
    await page.reload();
    await start(page, options);
    await send(stream, 'after the reload');
    await received(page, 1);
    expect(await logOf(page)).to.deep.equal([[stream, 2, 'xhr']]);
    expect(await page.evaluate(() => (window as any).transports)).to.deep.equal(['xhr']);
    expect(proxy.passed.sse - streamsBefore, 'event streams opened after the reload').to.equal(0);
  });
});
