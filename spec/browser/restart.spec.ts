/**
 * The demo page while its gateway (a child process on a fixed port, Redis store) is killed and
 * restarted: it shows reconnecting/offline, queues what the user sends meanwhile, and ends with
 * every message exactly once, in the stream's order.
 */
import { expect } from 'chai';
import type { Browser, Page } from 'playwright-core';
import { readStream, sendAs } from '../support/api.js';
import { demoIds, demoSay, demoTexts, describeBrowser, joinDemo, launchBrowser } from '../support/browser.js';
import { spawnGateway, TEST_API_KEY, type ChildGateway } from '../support/gateway.js';
import { freePort } from '../support/ports.js';
import { sharedRedis, uniquePrefix } from '../support/redis.js';

describeBrowser('demo page across a gateway restart (Chromium, Redis)', function () {
  this.timeout(90_000);
  let browser: Browser;
  let gw: ChildGateway | undefined;
  let env: Record<string, string>;

  before(async () => {
    const redis = await sharedRedis();
    env = { PORT: String(await freePort()), REDIS_URL: redis.url, POLLGATE_REDIS_PREFIX: uniquePrefix(), POLLGATE_DEMO_TOKEN: 'true' };
    gw = await spawnGateway(env);
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await gw?.kill();
  });

  const shown = (page: Page, n: number) => page.waitForFunction((k) => document.querySelectorAll('#messages li[data-seq]').length >= k, n, { timeout: 45_000 });

  it('shows reconnecting, then every message exactly once and in order', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    // A short backoff cap keeps the test quick; the default is 30 s.
    await page.addInitScript(() => {
      (window as any).PollgateDemoOptions = { backoffBase: 100, backoffCap: 1000 };
    });
    const url = gw!.url;
    const stream = 'room:restart';
    await joinDemo(page, url, 'dora', 'restart');
    await page.evaluate(() => {
      const w = window as any;
      w.states = [];
      w.demoClient.on('state', (s: string) => w.states.push(s));
    });
    for (const t of ['before 1', 'before 2', 'before 3']) await sendAs(url, TEST_API_KEY, stream, { from: 'server', text: t });
    await shown(page, 3);

    await gw!.kill();
    gw = undefined;
    await page.waitForFunction(() => /^(reconnecting|offline)$/.test(document.getElementById('status')!.getAttribute('data-state')!), null, { timeout: 20_000 });
    await demoSay(page, 'while down 1');
    await demoSay(page, 'while down 2');
    expect(await page.evaluate(() => (window as any).demoClient.pending().length)).to.equal(2);

    gw = await spawnGateway(env);
    for (const t of ['after 1', 'after 2', 'after 3']) await sendAs(url, TEST_API_KEY, stream, { from: 'server', text: t });
    await shown(page, 8);
    await page.waitForFunction(() => document.getElementById('status')!.getAttribute('data-state') === 'online', null, { timeout: 20_000 });

    const stored = await readStream(url, TEST_API_KEY, stream);
    expect(stored).to.have.length(8);
    expect(await demoIds(page)).to.deep.equal(stored.map((m) => m.id));
    const texts = await demoTexts(page);
    expect(texts.slice(0, 3)).to.deep.equal(['before 1', 'before 2', 'before 3']);
    expect(texts.filter((t) => t.startsWith('while down'))).to.deep.equal(['while down 1', 'while down 2']);
    expect(texts.filter((t) => t.startsWith('after'))).to.deep.equal(['after 1', 'after 2', 'after 3']);
    const states: string[] = await page.evaluate(() => (window as any).states);
    expect(states).to.include('reconnecting');
    expect(states[states.length - 1]).to.equal('online');
    await context.close();
  });
});
