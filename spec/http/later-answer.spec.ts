/**
 * A parked poll's answer is written later, by LaterAnswers, with a head collected and written in
 * one call (CollectedHead, lib/http/headers.ts): the same answer as any other (headers, status,
 * body, JSONP, errors, HEAD), with no header table left on the response, and whatever a host app
 * set on the response before the poll parked kept.
 */
import { request as httpRequest, createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { SignJWT } from 'jose';
import Koa, { type Context } from 'koa';
import { createGateway, type Gateway } from '../../lib/index.js';
import { WRITTEN_HEAD } from '../../lib/http/headers.js';
import { TEST_API_KEY, TEST_SECRET } from '../support/gateway.js';
import { uniqueStream, untilParked } from '../support/http.js';

const ORIGIN = 'https://app.example.com';
const AUTH = `Bearer ${TEST_API_KEY}`;

function tokenFor(sub: string): Promise<string> {
  return new SignJWT({ streams: ['*'], pub: [] }).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt().setExpirationTime('1h').sign(new TextEncoder().encode(TEST_SECRET));
}

/** A raw answer: HEAD needs a request whose body is not waited for. */
function rawRequest(method: string, url: string, headers: Record<string, string>): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('a parked poll\'s later answer (lib/http/answer-later.ts)', function () {
  let gateway: Gateway;
  let server: Server;
  let url: string;
  let lastPoll: Context | undefined;
  let lastSse: Context | undefined;

  before(async function () {
    gateway = await createGateway({ auth: { apiKeys: [TEST_API_KEY], secret: TEST_SECRET }, cors: { origins: [ORIGIN] }, jsonp: { enabled: true }, log: { level: 'silent' } });
    const app = new Koa();
    app.use((ctx, next) => {
      if (ctx.path === '/poll') lastPoll = ctx;
      if (ctx.path === '/sse') lastSse = ctx;
      // A host's own headers, set before the gateway sees the request.
      if (ctx.get('x-host-headers')) {
        ctx.set('x-host', 'kept');
        ctx.set('Vary', 'Accept-Encoding');
      }
      return next();
    });
    app.use(gateway.middleware());
    server = createServer(app.callback());
    gateway.attach(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async function () {
    await gateway?.close();
    await new Promise((resolve) => server?.close(resolve));
  });

  const send = (stream: string, data: unknown) =>
    fetch(`${url}/send`, { method: 'POST', headers: { authorization: AUTH, 'content-type': 'application/json' }, body: JSON.stringify({ stream, data }) });

  it('writes its head with the answer and leaves no header table on the response', async function () {
    const stream = uniqueStream('later');
    const answer = fetch(`${url}/poll?streams=${stream}&timeout=30`, { headers: { authorization: AUTH, origin: ORIGIN } });
    await untilParked(url, TEST_API_KEY, 1);
    expect((await send(stream, 'hello')).status).to.equal(200);
    const res = await answer;
    const text = await res.text();
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.equal('application/json; charset=utf-8');
    expect(res.headers.get('content-length')).to.equal(String(Buffer.byteLength(text)));
    expect(res.headers.get('cache-control')).to.equal('no-cache, no-store, must-revalidate');
    expect(res.headers.get('access-control-allow-origin')).to.equal(ORIGIN);
    expect(res.headers.get('vary')).to.equal('Origin');
    expect(JSON.parse(text).messages[0].data).to.equal('hello');
    // Stored with setHeader, the head would stay on the response (old by then) until a full GC.
    expect(lastPoll!.res.getHeaderNames()).to.deep.equal([]);
  });

  it("lets go of its head's text once written: headers still count as sent", async function () {
    const stream = uniqueStream('later');
    const answer = fetch(`${url}/poll?streams=${stream}&timeout=30`, { headers: { authorization: AUTH } });
    await untilParked(url, TEST_API_KEY, 1);
    expect((await send(stream, 'hello')).status).to.equal(200);
    const res = await answer;
    expect(res.headers.get('x-content-type-options')).to.equal('nosniff');
    expect((await res.json()).messages[0].data).to.equal('hello');
    const written = lastPoll!.res as ServerResponse & { _header?: unknown };
    // Node's copy of the head's text would stay on the old response until a full GC (releaseWrittenHead).
    expect(written._header).to.equal(WRITTEN_HEAD);
    expect(written.headersSent).to.equal(true);
    expect(() => written.setHeader('x-late', '1')).to.throw(/Cannot set headers after they are sent/);
    expect(() => written.writeHead(500)).to.throw(/Cannot (write|render) headers after they are sent/);
  });

  it("lets an event stream's head go once it went out with the first bytes: the connection does not hold it", async function () {
    const stream = uniqueStream('later');
    const ac = new AbortController();
    const res = await fetch(`${url}/sse?streams=${stream}`, { headers: { authorization: AUTH }, signal: ac.signal });
    try {
      expect(res.headers.get('content-type')).to.equal('text/event-stream; charset=utf-8');
      const reader = res.body!.getReader();
      let text = '';
      const readUntil = async (what: string) => {
        while (!text.includes(what)) {
          const { done, value } = await reader.read();
          if (done) throw new Error(`the event stream ended before ${what}: ${text}`);
          text += new TextDecoder().decode(value);
        }
      };
      await readUntil('event: ready');
      const written = lastSse!.res as ServerResponse & { _header?: unknown };
      expect(written._header).to.equal(WRITTEN_HEAD);
      expect(written.headersSent).to.equal(true);
      expect(() => written.setHeader('x-late', '1')).to.throw(/Cannot set headers after they are sent/);
      // Still an event stream: a message sent now arrives.
      expect((await send(stream, 'after')).status).to.equal(200);
      await readUntil('"after"');
    } finally {
      ac.abort();
    }
  });

  it('keeps the headers a host app set before the poll parked, and adds Origin to its Vary', async function () {
    const stream = uniqueStream('later');
    const answer = fetch(`${url}/poll?streams=${stream}&timeout=30`, { headers: { authorization: AUTH, origin: ORIGIN, 'x-host-headers': '1' } });
    await untilParked(url, TEST_API_KEY, 1);
    expect((await send(stream, 1)).status).to.equal(200);
    const res = await answer;
    expect(res.status).to.equal(200);
    expect(res.headers.get('x-host')).to.equal('kept');
    expect(res.headers.get('vary')).to.equal('Accept-Encoding, Origin');
    expect(res.headers.get('x-request-id')).to.match(/^[0-9a-f-]{36}$/);
    expect((await res.json()).messages).to.have.length(1);
  });

  it('answers a parked JSONP poll with a script', async function () {
    const stream = uniqueStream('later');
    const token = await tokenFor('jsonp-user');
    const answer = fetch(`${url}/poll?streams=${stream}&timeout=30&callback=got&token=${token}`);
    await untilParked(url, TEST_API_KEY, 1);
    expect((await send(stream, 'x')).status).to.equal(200);
    const res = await answer;
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.equal('application/javascript; charset=utf-8');
    expect(res.headers.get('x-content-type-options')).to.equal('nosniff');
    const body = await res.text();
    expect(body.startsWith('/**/got({"messages":[')).to.equal(true);
    expect(res.headers.get('content-length')).to.equal(String(Buffer.byteLength(body)));
  });

  it('renders an error that ends a parked poll, as 200 for an XDomainRequest client', async function () {
    const token = await tokenFor('later-bob');
    const answer = fetch(`${url}/poll?streams=${uniqueStream('later')}&timeout=30&transport=xdr&token=${token}`);
    await untilParked(url, TEST_API_KEY, 1);
    const cut = await fetch(`${url}/disconnect`, { method: 'POST', headers: { authorization: AUTH, 'content-type': 'application/json' }, body: JSON.stringify({ sub: 'later-bob' }) });
    expect(cut.status).to.equal(200);
    const res = await answer;
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.equal('application/json; charset=utf-8');
    expect(res.headers.get('cache-control')).to.equal('no-cache, no-store, must-revalidate');
    expect((await res.json()).error.code).to.equal('forbidden');
  });

  it('answers a parked HEAD poll with the length of its body and no body', async function () {
    const res = await rawRequest('HEAD', `${url}/poll?streams=${uniqueStream('later')}&timeout=0.2`, { authorization: AUTH });
    expect(res.status).to.equal(200);
    expect(res.headers['content-type']).to.equal('application/json; charset=utf-8');
    expect(Number(res.headers['content-length'])).to.be.greaterThan(0);
    expect(res.body).to.equal('');
    expect(lastPoll!.state.pollEnd).to.equal('timeout');
  });
});
