/**
 * The client's transports in headless Chromium, through a proxy that can refuse them: native
 * WebSocket, native EventSource when WebSocket is missing, XHR long-polling when both are, and the
 * fall back from a refused transport to the next one.
 */
import { expect } from 'chai';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { readStream, sendAs } from '../support/api.js';
import { describeBrowser, launchBrowser, recordingPage } from '../support/browser.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { startProxy, type CuttingProxy } from '../support/proxy.js';

/** Init scripts taking native push transports away before any page script runs. */
const WITHOUT = {
  websocket: () => {
    (window as any).WebSocket = undefined;
  },
  both: () => {
    (window as any).WebSocket = undefined;
    (window as any).EventSource = undefined;
  },
};

describeBrowser('client transports (Chromium)', function () {
  this.timeout(60_000);
  let gw: TestGateway;
  let proxy: CuttingProxy;
  let browser: Browser;
  let token: string;
  const contexts: BrowserContext[] = [];

  before(async () => {
    gw = await startGateway();
    proxy = await startProxy(gw.url, { '/client.html': () => recordingPage(proxy.url) });
    token = await gw.token({ sub: 'tester', streams: ['t:*'], pub: ['t:*'] });
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

  async function open(options: Record<string, unknown>, init?: () => void): Promise<Page> {
    const context = await browser.newContext();
    contexts.push(context);
    const page = await context.newPage();
    if (init) await page.addInitScript(init);
    await page.goto(`${proxy.url}/client.html`);
    await page.evaluate((o) => (window as any).start(o), { token, backoffBase: 50, backoffCap: 500, ...options });
    await page.waitForFunction(() => (window as any).client.state === 'online', null, { timeout: 20_000 });
    return page;
  }

  const logOf = (page: Page): Promise<[string, number, string][]> => page.evaluate(() => (window as any).log);
  const received = (page: Page, n: number) => page.waitForFunction((want) => (window as any).log.length >= want, n, { timeout: 20_000 });
  const hasFrom = (page: Page, stream: string, timeout: number) =>
    page.waitForFunction((s) => (window as any).log.some((e: any[]) => e[0] === s), stream, { timeout });

  /** Sends probes to a stream the page just subscribed to until one arrives (the subscription is then live). */
  async function untilLive(page: Page, stream: string): Promise<void> {
    for (let i = 0; i < 40; i++) {
      await sendAs(gw.url, gw.apiKey, stream, `probe ${i}`);
      if (await hasFrom(page, stream, 500).then(() => true, () => false)) return;
    }
    throw new Error(`no message of ${stream} arrived`);
  }
  const pageSend = (page: Page, stream: string, data: unknown) =>
    page.evaluate(
      ([s, d]) => new Promise((resolve) => (window as any).client.send(s, d, (err: any, r: any) => resolve(err ? err.code : r.seq))),
      [stream, data] as const,
    );

  const cases = [
    { transport: 'websocket', init: undefined, sendsOverHttp: false },
    { transport: 'sse', init: WITHOUT.websocket, sendsOverHttp: true },
    { transport: 'xhr', init: WITHOUT.both, sendsOverHttp: true },
  ];
  for (const c of cases) {
    it(`receives, subscribes, unsubscribes and sends over ${c.transport}${c.init ? ' when the better transports are missing' : ''}`, async () => {
      const a = `t:${c.transport}-a`;
      const b = `t:${c.transport}-b`;
      const before = { ...proxy.passed };
      const page = await open({ streams: [a] }, c.init);
      expect(await page.evaluate(() => (window as any).client.transport)).to.equal(c.transport);
      await sendAs(gw.url, gw.apiKey, a, 1);
      await received(page, 1);

      await page.evaluate((s) => (window as any).client.subscribe(s), b);
      await untilLive(page, b);
      await page.evaluate((s) => (window as any).client.unsubscribe(s), a);
      await sendAs(gw.url, gw.apiKey, a, 'not for this client');
      const seq = await pageSend(page, b, 'from the page');
      expect(seq).to.be.a('number');
      await page.waitForFunction(([s, n]) => (window as any).log.some((e: any[]) => e[0] === s && e[1] === n), [b, seq] as const, { timeout: 20_000 });

      const log = await logOf(page);
      expect(log.filter((e) => e[0] === a).map((e) => e[1])).to.deep.equal([1]);
      // From the first probe that arrived to the page's own message: every seq once, in order.
      const seqs = log.filter((e) => e[0] === b).map((e) => e[1]);
      expect(seqs).to.deep.equal(Array.from({ length: seqs.length }, (_, i) => seqs[0]! + i));
      expect(seqs[seqs.length - 1]).to.equal(seq);
      expect(new Set(log.map((e) => e[2]))).to.deep.equal(new Set([c.transport]));
      expect((await readStream(gw.url, gw.apiKey, b)).pop()!.data).to.equal('from the page');
      expect(proxy.passed.send - before.send, 'POST /send requests').to.equal(c.sendsOverHttp ? 1 : 0);
      if (c.transport !== 'xhr') expect(proxy.passed.poll - before.poll, '/poll requests').to.equal(0);
    });
  }

  it('falls back from a refused WebSocket to SSE, and from both to long-polling, each at once', async () => {
    proxy.refuse('ws');
    const first = await open({ streams: ['t:fallback-1'] });
    expect(await first.evaluate(() => (window as any).transports)).to.deep.equal(['websocket', 'sse']);
    proxy.refuse('sse');
    const second = await open({ streams: ['t:fallback-2'] });
    expect(await second.evaluate(() => (window as any).transports)).to.deep.equal(['websocket', 'sse', 'xhr']);
    await sendAs(gw.url, gw.apiKey, 't:fallback-2', 'over xhr');
    await received(second, 1);
    expect(await logOf(second)).to.deep.equal([['t:fallback-2', 1, 'xhr']]);
  });

  it('gives up on a WebSocket that went silent (a proxy froze it) and resumes from its cursor on a new one', async () => {
    const stream = 't:frozen';
    // pollTimeout: a socket silent this long gets a ping; timeoutMargin: how long the pong may take.
    const page = await open({ streams: [stream], pollTimeout: 1, timeoutMargin: 1 });
    expect(await page.evaluate(() => (window as any).client.transport)).to.equal('websocket');
    await sendAs(gw.url, gw.apiKey, stream, 'before');
    await received(page, 1);
    const upgrades = proxy.passed.ws;
    proxy.freeze('ws');
    await sendAs(gw.url, gw.apiKey, stream, 'while frozen');
    await received(page, 2);
    expect(proxy.passed.ws - upgrades, 'new WebSocket connections').to.equal(1);
    expect(await logOf(page)).to.deep.equal([[stream, 1, 'websocket'], [stream, 2, 'websocket']]);
  });

  it('keeps a forced transport even when it is refused, and says so in its state', async () => {
    proxy.refuse('ws');
    const refusedBefore = proxy.refused.ws;
    const context = await browser.newContext();
    contexts.push(context);
    const page = await context.newPage();
    await page.goto(`${proxy.url}/client.html`);
    await page.evaluate((t) => (window as any).start({ token: t, streams: ['t:forced'], transport: 'websocket', backoffBase: 50, backoffCap: 200 }), token);
    await page.waitForFunction(() => (window as any).client.state === 'reconnecting', null, { timeout: 20_000 });
    expect(proxy.refused.ws - refusedBefore).to.be.at.least(1);
    proxy.allow('ws');
    await page.waitForFunction(() => (window as any).client.state === 'online', null, { timeout: 20_000 });
    expect(await page.evaluate(() => (window as any).transports)).to.deep.equal(['websocket']);
  });
});
