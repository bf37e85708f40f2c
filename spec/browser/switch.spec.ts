/**
 * The transport-switch test (issue 4): one page receives 300 messages sent at a steady rate while a
 * proxy in front of the gateway refuses its current transport, moving it from WebSocket to SSE to
 * long-polling and, once allowed again, back to WebSocket. Every message must arrive exactly once,
 * in order.
 */
import { expect } from 'chai';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { sendAs } from '../support/api.js';
import { describeBrowser, launchBrowser, recordingPage } from '../support/browser.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { startProxy, type CuttingProxy, type Kind } from '../support/proxy.js';

const TOTAL = 300;
const EVERY_MS = 15;
const STREAM = 'switch:main';

/** What the proxy does before message `at` is sent, and the transport the client must be on `settle` messages later. */
interface Phase {
  at: number;
  refuse?: Kind[];
  allow?: Kind[];
  expect: string;
}

const PHASES: Phase[] = [
  { at: 0, expect: 'websocket' },
  { at: 75, refuse: ['ws'], expect: 'sse' },
  { at: 150, refuse: ['sse'], expect: 'xhr' },
  { at: 225, allow: ['ws', 'sse'], expect: 'websocket' },
];
const SETTLE = 40;

/** Drops repeats that follow each other: ['a','a','b','a'] -> ['a','b','a']. */
function runs<T>(list: T[]): T[] {
  return list.filter((x, i) => i === 0 || x !== list[i - 1]);
}

describeBrowser('transport switch (Chromium, through a refusing proxy)', function () {
  this.timeout(120_000);
  let gw: TestGateway;
  let proxy: CuttingProxy;
  let browser: Browser;
  let context: BrowserContext | undefined;

  before(async () => {
    gw = await startGateway();
    proxy = await startProxy(gw.url, { '/client.html': () => recordingPage(proxy.url) });
    browser = await launchBrowser();
  });
  after(async () => {
    await context?.close();
    await browser?.close();
    await proxy?.close();
    await gw?.shutdown();
  });

  /** Resolves once the client is online on `transport` (the sender waits here only if a switch is slow). */
  function onTransport(page: Page, transport: string): Promise<unknown> {
    return page.waitForFunction((t) => (window as any).client.transport === t && (window as any).client.state === 'online', transport, { timeout: 30_000 });
  }

  it('delivers 300 messages exactly once and in order while moving WebSocket -> SSE -> long-poll -> WebSocket', async () => {
    const token = await gw.token({ sub: 'switcher', streams: ['switch:*'] });
    context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${proxy.url}/client.html`);
    // A short backoff and upgrade interval keep the test fast; the failure detection is the real one.
    await page.evaluate((t) => (window as any).start({ token: t, streams: ['switch:main'], backoffBase: 50, backoffCap: 400, upgradeInterval: 500 }), token);
    await onTransport(page, 'websocket');

    const sent: number[] = [];
    const started = Date.now();
    for (let i = 0; i < TOTAL; i++) {
      const phase = PHASES.find((p) => p.at === i);
      if (phase?.refuse) proxy.refuse(...phase.refuse);
      if (phase?.allow) proxy.allow(...phase.allow);
      const settling = PHASES.find((p) => p.at + SETTLE === i);
      if (settling) await onTransport(page, settling.expect);
      // A steady rate: message i leaves at started + i * EVERY_MS (later only if a switch held us up).
      const wait = started + i * EVERY_MS - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      sent.push((await sendAs(gw.url, gw.apiKey, STREAM, { i })).seq);
    }
    await page.waitForFunction((n) => (window as any).log.length >= n, TOTAL, { timeout: 30_000 });

    const log: [string, number, string][] = await page.evaluate(() => (window as any).log);
    expect(log.map((e) => e[1]), 'every message once, in order').to.deep.equal(sent);
    // Each phase's transport delivered some of them, in the order of the phases.
    const over = runs(log.map((e) => e[2]));
    const wanted = PHASES.map((p) => p.expect);
    const switches = (await page.evaluate(() => (window as any).transports)).length - 1;
    process.stdout.write(`      delivered over ${over.join(' -> ')}; ${switches} transport changes in all\n`);
    let at = 0;
    for (const t of over) if (t === wanted[at]) at++;
    expect(at, `transports that delivered: ${over.join(' -> ')}`).to.equal(wanted.length);
    expect(proxy.refused.ws, 'refused WebSocket upgrades').to.be.greaterThan(0);
    expect(proxy.refused.sse, 'refused event streams').to.be.greaterThan(0);
    expect(await page.evaluate(() => (window as any).errors)).to.deep.equal([]);
  });
});
