/**
 * Real-browser tests: Debian's /usr/bin/chromium driven by playwright-core (never a downloaded
 * browser), tiny HTML servers for second origins, and a stand-in XDomainRequest.
 */
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
export const hasChromium = existsSync(CHROMIUM);

/** describe() when Chromium is installed; otherwise one skipped test saying why. */
export function describeBrowser(title: string, body: (this: Mocha.Suite) => void): void {
  if (hasChromium) {
    describe(title, body);
    return;
  }
  describe(title, () => {
    it(`is skipped: ${CHROMIUM} is missing (apt-get install chromium; CI installs it)`, function () {
      this.skip();
    });
  });
}

/** Headless Chromium; the caller closes it. */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-quic', '--disable-dev-shm-usage',
    ],
  });
}

export interface HtmlServer {
  url: string;
  origin: string;
  close(): Promise<void>;
}

/** Serves `pages` (path -> HTML, produced per request) on 127.0.0.1 and a free port: a second origin. */
export async function serveHtml(pages: Record<string, () => string>): Promise<HtmlServer> {
  const server: Server = createServer((req, res) => {
    const page = pages[(req.url ?? '/').split('?')[0]!];
    if (!page) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' }).end(page());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: origin,
    origin,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A page that loads the client from the gateway and records what it receives in window.got/states. */
export function clientPage(gatewayUrl: string, options: Record<string, unknown>): string {
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><title>second origin</title></head><body>
<script src="${gatewayUrl}/pollgate.js"></script>
<script>
  window.got = []; window.states = []; window.errors = [];
  var client = window.client = new Pollgate(${JSON.stringify({ url: gatewayUrl, ...options })});
  client.on('message', function (m) { got.push(m); });
  client.on('state', function (s) { states.push(s); });
  client.on('error', function (e) { errors.push(e.code); });
</script></body></html>`;
}

/** Texts of the messages the demo page shows, oldest first. */
export function demoTexts(page: Page): Promise<string[]> {
  return page.$$eval('#messages li[data-seq] .text', (els) => els.map((e) => e.textContent ?? ''));
}

/** Ids of the messages the demo page shows, oldest first. */
export function demoIds(page: Page): Promise<string[]> {
  return page.$$eval('#messages li[data-seq]', (els) => els.map((e) => e.getAttribute('data-id') ?? ''));
}

/** Opens the demo page, joins `room` as `name` and resolves once the client is online. */
export async function joinDemo(page: Page, url: string, name: string, room: string): Promise<void> {
  await page.goto(`${url}/`);
  await page.fill('#name', name);
  await page.fill('#room', room);
  await page.click('#join-btn');
  await page.waitForFunction(() => document.getElementById('status')!.getAttribute('data-state') === 'online', null, { timeout: 20_000 });
}

/** Sends from the demo page's form. */
export async function demoSay(page: Page, text: string): Promise<void> {
  await page.fill('#text', text);
  await page.click('#send-btn');
}

/**
 * Init script making the page look like IE8/9 to the client: XMLHttpRequest without CORS, and an
 * XDomainRequest that enforces XDR's limits, and neither WebSocket nor EventSource (GET/POST only, same scheme, no way to set headers,
 * text/plain bodies, no status: non-200 answers fire onerror) over the real XHR. Its requests are
 * logged in window.__xdrLog.
 */
export function ieStandIn(): void {
  const w = window as any;
  const RealXHR = window.XMLHttpRequest;
  const log: any[] = (w.__xdrLog = []);
  function LegacyXHR(this: any) {}
  LegacyXHR.prototype.open = function () {
    throw new Error('this XMLHttpRequest cannot go cross-origin (IE9)');
  };
  w.XMLHttpRequest = LegacyXHR;
  w.WebSocket = w.EventSource = undefined;
  function XDomainRequest(this: any) {
    this.timeout = 0;
    this.responseText = '';
    this.contentType = '';
    this.onload = this.onerror = this.ontimeout = this.onprogress = null;
  }
  XDomainRequest.prototype.open = function (method: string, url: string) {
    if (method !== 'GET' && method !== 'POST') throw new Error('XDomainRequest: only GET and POST');
    if (url.slice(0, location.protocol.length) !== location.protocol) throw new Error('XDomainRequest: scheme must match the page');
    this.method = method;
    this.url = url;
  };
  XDomainRequest.prototype.send = function (body?: unknown) {
    const self = this;
    if (body !== undefined && body !== null && typeof body !== 'string') throw new Error('XDomainRequest: body must be text');
    const entry: any = { method: this.method, url: this.url, body: body ?? null, onprogress: typeof this.onprogress === 'function', timeout: this.timeout };
    log.push(entry);
    const x = new RealXHR();
    this.xhr = x;
    x.open(this.method, this.url, true);
    // No custom headers ever; a string body goes as text/plain, a CORS "simple" request.
    if (this.timeout) x.timeout = this.timeout;
    x.onload = function () {
      entry.status = x.status;
      if (x.status !== 200) return self.onerror && self.onerror();
      self.responseText = x.responseText;
      self.contentType = x.getResponseHeader('Content-Type') || '';
      if (self.onload) self.onload();
    };
    x.onerror = function () {
      entry.status = 0;
      if (self.onerror) self.onerror();
    };
    x.ontimeout = function () {
      if (self.ontimeout) self.ontimeout();
    };
    x.send((body as string | null) ?? null);
  };
  XDomainRequest.prototype.abort = function () {
    if (this.xhr) this.xhr.abort();
  };
  w.XDomainRequest = XDomainRequest;
}

/**
 * A page that loads the client from `gatewayUrl` without starting it: window.start(options) creates
 * window.client and records in window.log each message as [stream, seq, transport it came over],
 * and in window.transports every transport change.
 */
export function recordingPage(gatewayUrl: string): string {
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><title>recording</title></head><body>
<script src="${gatewayUrl}/pollgate.js"></script>
<script>
  window.log = []; window.transports = []; window.errors = [];
  window.start = function (options) {
    options.url = ${JSON.stringify(gatewayUrl)};
    var client = window.client = new Pollgate(options);
    window.transports.push(client.transport);
    client.on('message', function (m) { log.push([m.stream, m.seq, client.transport]); });
    client.on('transport', function (t) { transports.push(t); });
    client.on('error', function (e) { errors.push(e.code); });
  };
</script></body></html>`;
}
