/**
 * Pages on other origins (other ports) reaching the gateway: CORS XHR, JSONP where CORS is not
 * allowed, and the IE8/9 XDomainRequest path through a stand-in that enforces XDR's limits.
 */
import { expect } from 'chai';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { readStream, sendAs } from '../support/api.js';
import { clientPage, describeBrowser, ieStandIn, launchBrowser, serveHtml, type HtmlServer } from '../support/browser.js';
import { startGateway, type TestGateway } from '../support/gateway.js';

describeBrowser('cross-origin transports (Chromium)', function () {
  this.timeout(60_000);
  let gw: TestGateway;
  let browser: Browser;
  let allowed: HtmlServer;
  let other: HtmlServer;
  let token: string;
  const contexts: BrowserContext[] = [];
  const pageOptions: Record<string, Record<string, unknown>> = {};

  before(async () => {
    const page = (name: string) => () => clientPage(gw.url, { token, ...pageOptions[name] });
    allowed = await serveHtml({ '/cors.html': page('cors'), '/xdr.html': page('xdr') });
    other = await serveHtml({ '/jsonp.html': page('jsonp') });
    gw = await startGateway({ cors: { origins: [allowed.origin] }, jsonp: { enabled: true } });
    token = await gw.token({ sub: 'remote', streams: ['room:*'], pub: ['room:*'] });
    browser = await launchBrowser();
  });
  afterEach(async () => {
    while (contexts.length) await contexts.pop()!.close();
  });
  after(async () => {
    await browser?.close();
    await gw?.shutdown();
    await allowed?.close();
    await other?.close();
  });

  async function open(url: string, init?: () => void): Promise<Page> {
    const context = await browser.newContext();
    contexts.push(context);
    const page = await context.newPage();
    if (init) await page.addInitScript(init);
    await page.goto(url);
    await page.waitForFunction(() => (window as any).client && (window as any).client.state === 'online', null, { timeout: 20_000 });
    return page;
  }

  const received = (page: Page) => page.evaluate(() => (window as any).got.map((m: { data: unknown }) => m.data));
  const count = (n: number) => (window as any).got.length >= n;

  it('receives and sends over CORS XHR from an allowed origin', async () => {
    pageOptions.cors = { streams: ['room:cors'], transport: 'xhr' };
    const page = await open(`${allowed.url}/cors.html`);
    expect(await page.evaluate(() => (window as any).client.transport)).to.equal('xhr');
    await sendAs(gw.url, gw.apiKey, 'room:cors', 'one');
    await sendAs(gw.url, gw.apiKey, 'room:cors', 'two');
    await page.waitForFunction(count, 2, { timeout: 20_000 });
    expect(await received(page)).to.deep.equal(['one', 'two']);
    const sent = await page.evaluate(
      () => new Promise((resolve) => (window as any).client.send('room:cors', 'from the page', (err: any, r: any) => resolve(err ? err.code : r.seq))),
    );
    expect(sent).to.equal(3);
  });

  it('POSTs a poll whose GET URL would pass 2,000 characters (IE takes 2,083 at most), and receives over it', async () => {
    // 40 streams with long names: their list and cursor make a GET URL of about 3,000 characters.
    const streams = Array.from({ length: 40 }, (_, i) => `room:long-${String(i).padStart(2, '0')}-${'n'.repeat(50)}`);
    pageOptions.cors = { streams, transport: 'xhr' };
    const spy = () => {
      (window as any).__polls = [];
      const open = XMLHttpRequest.prototype.open;
      const send = XMLHttpRequest.prototype.send;
      XMLHttpRequest.prototype.open = function (this: XMLHttpRequest, method: string, url: string | URL, ...rest: unknown[]) {
        if (String(url).includes('/poll')) (window as any).__polls.push((this as any).__poll = { method, length: String(url).length });
        return (open as (...a: unknown[]) => void).call(this, method, url, ...rest);
      } as typeof open;
      XMLHttpRequest.prototype.send = function (this: XMLHttpRequest, body?: Document | XMLHttpRequestBodyInit | null) {
        if ((this as any).__poll) (this as any).__poll.body = body;
        return send.call(this, body);
      };
    };
    const page = await open(`${allowed.url}/cors.html`, spy);
    await sendAs(gw.url, gw.apiKey, streams[39]!, 'to the last stream');
    await sendAs(gw.url, gw.apiKey, streams[0]!, 'to the first');
    await page.waitForFunction(count, 2, { timeout: 20_000 });
    expect(await received(page)).to.deep.equal(['to the last stream', 'to the first']);
    const polls: { method: string; length: number; body: string }[] = await page.evaluate(() => (window as any).__polls);
    expect(polls.length).to.be.greaterThan(1);
    for (const p of polls) {
      expect(p.method).to.equal('POST');
      expect(p.length).to.be.below(100);
      // The parameters went in the body, every stream and (after the first answer) the cursor.
      const params = JSON.parse(p.body) as { streams: string; cursor?: string; since?: string };
      expect(params.streams.split(',')).to.deep.equal(streams);
      expect(params.cursor ?? params.since).to.be.a('string');
    }
    expect(JSON.parse(polls[polls.length - 1]!.body).cursor).to.be.a('string');
  });

  it('receives over JSONP on an origin CORS does not allow', async () => {
    pageOptions.jsonp = { streams: ['room:jsonp'], transport: 'jsonp' };
    const page = await open(`${other.url}/jsonp.html`);
    // The setup is real: this origin cannot read the gateway's answers with fetch/XHR.
    const corsWorks = await page.evaluate((url) => fetch(`${url}/healthz`).then(() => true, () => false), gw.url);
    expect(corsWorks).to.equal(false);
    await sendAs(gw.url, gw.apiKey, 'room:jsonp', { n: 1 });
    await sendAs(gw.url, gw.apiKey, 'room:jsonp', { n: 2 });
    await page.waitForFunction(count, 2, { timeout: 20_000 });
    expect(await received(page)).to.deep.equal([{ n: 1 }, { n: 2 }]);
    const cannotSend = await page.evaluate(() => new Promise((resolve) => (window as any).client.send('room:jsonp', 1, (err: any) => resolve(err && err.code))));
    expect(cannotSend).to.equal('unsupported');
  });

  it('uses XDomainRequest (text/plain POSTs, no headers, errors as 200) when XHR cannot do CORS', async () => {
    pageOptions.xdr = { streams: ['room:xdr'] };
    const page = await open(`${allowed.url}/xdr.html`, ieStandIn);
    expect(await page.evaluate(() => (window as any).client.transport)).to.equal('xdr');
    await sendAs(gw.url, gw.apiKey, 'room:xdr', 'to IE');
    await page.waitForFunction(count, 1, { timeout: 20_000 });
    const sent = await page.evaluate(
      () => new Promise((resolve) => (window as any).client.send('room:xdr', 'from IE', (err: any, r: any) => resolve(err ? err.code : r.seq))),
    );
    expect(sent).to.equal(2);
    expect((await readStream(gw.url, gw.apiKey, 'room:xdr')).map((m) => m.data)).to.deep.equal(['to IE', 'from IE']);

    const log: { method: string; url: string; body: string; onprogress: boolean; timeout: number }[] = await page.evaluate(() => (window as any).__xdrLog);
    expect(log.length).to.be.greaterThan(1);
    for (const r of log) {
      expect(r.method).to.equal('POST');
      expect(r.url).to.contain('transport=xdr');
      expect(r.onprogress, 'onprogress set').to.equal(true);
      expect(r.timeout).to.be.greaterThan(0);
      expect(JSON.parse(r.body).token).to.equal(token);
    }
    // An error still reaches the client as a body: a forbidden stream, answered 200 with {"error"}.
    const denied = await page.evaluate(() => new Promise((resolve) => (window as any).client.send('private:x', 1, (err: any) => resolve(err && err.code))));
    expect(denied).to.equal('forbidden');
  });
});
