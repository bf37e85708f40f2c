/**
 * The demo page in headless Chromium against an in-process gateway.
 */
import { expect } from 'chai';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext } from 'playwright-core';
import { sendAs } from '../support/api.js';
import { demoSay, demoTexts, describeBrowser, joinDemo, launchBrowser } from '../support/browser.js';
import { startGateway, type TestGateway } from '../support/gateway.js';

const ARTIFACTS = fileURLToPath(new URL('../../../artifacts/', import.meta.url));

describeBrowser('demo page (Chromium)', function () {
  this.timeout(60_000);
  let gw: TestGateway;
  let browser: Browser;
  const contexts: BrowserContext[] = [];

  before(async () => {
    // The demo page gets its token from /demo/token, which a configured gateway serves only when asked.
    gw = await startGateway({ auth: { demoToken: true } });
    browser = await launchBrowser();
  });
  afterEach(async () => {
    while (contexts.length) await contexts.pop()!.close();
  });
  after(async () => {
    await browser?.close();
    await gw?.shutdown();
  });

  async function newPage() {
    const context = await browser.newContext({ viewport: { width: 420, height: 760 } });
    contexts.push(context);
    return context.newPage();
  }

  it('receives a message sent by /send, with WebSocket and EventSource removed before any script, and saves a screenshot', async () => {
    const page = await newPage();
    await page.addInitScript(() => {
      delete (window as any).WebSocket;
      delete (window as any).EventSource;
      (window as any).WebSocket = (window as any).EventSource = undefined;
    });
    await joinDemo(page, gw.url, 'alice', 'browser-demo');
    expect(await page.evaluate(() => typeof (window as any).WebSocket)).to.equal('undefined');
    expect(await page.textContent('#status')).to.equal('online \u00b7 xhr');
    await sendAs(gw.url, gw.apiKey, 'room:browser-demo', { from: 'server', text: 'hello from /send' });
    await page.waitForFunction(() => document.querySelectorAll('#messages li[data-seq]').length === 1, null, { timeout: 20_000 });
    expect(await demoTexts(page)).to.deep.equal(['hello from /send']);

    await demoSay(page, 'and hello back');
    await page.waitForFunction(() => document.querySelectorAll('#messages li[data-seq]').length === 2, null, { timeout: 20_000 });
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: `${ARTIFACTS}demo.png`, fullPage: true });
  });

  it('shows two pages in one room each other\'s messages, in the same order', async () => {
    const a = await newPage();
    const b = await newPage();
    await joinDemo(a, gw.url, 'ann', 'browser-pair');
    await joinDemo(b, gw.url, 'bob', 'browser-pair');
    expect(await a.textContent('#status')).to.equal('online \u00b7 websocket');
    for (let i = 1; i <= 3; i++) {
      await demoSay(a, `ann ${i}`);
      await demoSay(b, `bob ${i}`);
    }
    const six = () => document.querySelectorAll('#messages li[data-seq]').length === 6;
    await a.waitForFunction(six, null, { timeout: 20_000 });
    await b.waitForFunction(six, null, { timeout: 20_000 });
    const seen = await demoTexts(a);
    expect(await demoTexts(b)).to.deep.equal(seen);
    expect([...seen].sort()).to.deep.equal(['ann 1', 'ann 2', 'ann 3', 'bob 1', 'bob 2', 'bob 3']);
    // Each page's own messages keep the order they were sent in.
    expect(seen.filter((t) => t.startsWith('ann'))).to.deep.equal(['ann 1', 'ann 2', 'ann 3']);
  });

  it('shows offline while the browser is offline, then catches up', async () => {
    const page = await newPage();
    await page.addInitScript(() => {
      (window as any).PollgateDemoOptions = { backoffBase: 100, backoffCap: 1000 };
    });
    await joinDemo(page, gw.url, 'erin', 'browser-offline');
    const stateIs = (s: string) => page.waitForFunction((want) => document.getElementById('status')!.getAttribute('data-state') === want, s, { timeout: 20_000 });
    await page.context().setOffline(true);
    await stateIs('offline');
    await sendAs(gw.url, gw.apiKey, 'room:browser-offline', { from: 's', text: 'missed while offline' });
    await page.context().setOffline(false);
    await stateIs('online');
    await page.waitForFunction(() => document.querySelectorAll('#messages li[data-seq]').length === 1, null, { timeout: 20_000 });
    expect(await demoTexts(page)).to.deep.equal(['missed while offline']);
  });

  it('works under a mount: pages at /rt/ go through /rt/ws, /rt/poll and /rt/send', async () => {
    const mounted = await startGateway({ mount: '/rt', auth: { demoToken: true } });
    try {
      const ws = await newPage();
      const polling = await newPage();
      await polling.addInitScript(() => {
        (window as any).PollgateDemoOptions = { transports: ['polling'] };
      });
      await joinDemo(ws, `${mounted.url}/rt`, 'mona', 'browser-mount');
      await joinDemo(polling, `${mounted.url}/rt`, 'pat', 'browser-mount');
      expect(await ws.textContent('#status')).to.equal('online \u00b7 websocket');
      expect(await polling.textContent('#status')).to.equal('online \u00b7 xhr');
      await demoSay(ws, 'over the socket');
      await ws.waitForFunction(() => document.querySelectorAll('#messages li[data-seq]').length === 1, null, { timeout: 20_000 });
      await demoSay(polling, 'over /rt/send');
      const two = () => document.querySelectorAll('#messages li[data-seq]').length === 2;
      await ws.waitForFunction(two, null, { timeout: 20_000 });
      await polling.waitForFunction(two, null, { timeout: 20_000 });
      for (const page of [ws, polling]) expect(await demoTexts(page)).to.deep.equal(['over the socket', 'over /rt/send']);
    } finally {
      while (contexts.length) await contexts.pop()!.close();
      await mounted.shutdown();
    }
  });

  it('keeps only the newest 200 messages', async () => {
    const page = await newPage();
    await joinDemo(page, gw.url, 'carol', 'browser-many');
    const res = await fetch(`${gw.url}/send`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${gw.apiKey}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ messages: Array.from({ length: 100 }, (_, i) => ({ stream: 'room:browser-many', data: { from: 's', text: `m${i}` } })) }),
    });
    expect(res.status).to.equal(200);
    await fetch(`${gw.url}/send`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${gw.apiKey}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ messages: Array.from({ length: 100 }, (_, i) => ({ stream: 'room:browser-many', data: { from: 's', text: `n${i}` } })) }),
    });
    await sendAs(gw.url, gw.apiKey, 'room:browser-many', { from: 's', text: 'last' });
    await page.waitForFunction(() => {
      const items = document.querySelectorAll('#messages li[data-seq] .text');
      return items.length > 0 && items[items.length - 1]!.textContent === 'last';
    }, null, { timeout: 20_000 });
    const texts = await demoTexts(page);
    expect(texts).to.have.length(200);
    expect(texts[0]).to.equal('m1');
  });
});
