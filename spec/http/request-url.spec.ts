/**
 * A request's URL is read, not kept (originTarget, lib/http/target.ts): the routes and the router
 * read the path and query as Koa's ctx.path and ctx.querystring would, without the Url object
 * Koa's getters cache on the request, which a parked poll held for its whole hold.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import fc from 'fast-check';
import Koa from 'koa';
import { createGateway, type Gateway } from '../../lib/index.js';
import { originTarget } from '../../lib/http/target.js';
import { TEST_API_KEY, TEST_SECRET } from '../support/gateway.js';
import { uniqueStream, untilParked } from '../support/http.js';

const AUTH = `Bearer ${TEST_API_KEY}`;

/** What Koa reads for `url`: ctx.path and ctx.querystring. */
function koaReading(url: string): { path: string; query: string } {
  const ctx = new Koa().createContext({ url, headers: {} } as IncomingMessage, {} as never);
  return { path: ctx.path, query: ctx.querystring };
}

describe('originTarget reads a request target as Koa does', function () {
  it('agrees with ctx.path and ctx.querystring whenever it answers, and answers for plain origin-form targets', function () {
    const piece = fc.constantFrom('/', '?', '#', '&', '=', '+', '%20', '%', ' ', '\t', '\r', '\n', '\f', '\u00a0', '\ufeff', 'a', 'poll', 'streams', 'é', '..', '\\');
    const target = fc.array(piece, { maxLength: 12 }).map((parts) => parts.join(''));
    fc.assert(
      fc.property(fc.constantFrom('/', 'http://h/', 'https://h:8080/', 'a', ''), target, (start, rest) => {
        const url = start + rest;
        const read = originTarget(url);
        if (read) expect(read, url).to.deep.equal(koaReading(url));
        // Every origin-form target without the characters that send parseurl to url.parse is read here.
        if (url.startsWith('/') && !/[\t\n\f\r #\u00a0\ufeff]/.test(url)) expect(read, url).to.not.equal(undefined);
        if (!url.startsWith('/')) expect(read, url).to.equal(undefined);
      }),
      { numRuns: 2000 },
    );
  });

  it('reads these as Koa does', function () {
    for (const url of ['/poll', '/poll?', '/poll?streams=a&cursor=x?y', '/poll??', '/a/b?c=%20+d']) {
      expect(originTarget(url), url).to.deep.equal(koaReading(url));
    }
    for (const url of ['/poll?streams=a#frag', '/po ll', 'http://h/poll?x', '*', '']) expect(originTarget(url), url).to.equal(undefined);
  });
});

describe("a parked poll keeps no parsed URL on its request", function () {
  let gateway: Gateway;
  let server: Server;
  let url: string;
  const polls: IncomingMessage[] = [];

  before(async function () {
    gateway = await createGateway({ auth: { apiKeys: [TEST_API_KEY], secret: TEST_SECRET }, log: { level: 'silent' } });
    const app = new Koa();
    // By req.url: Koa's ctx.path would parse and keep the URL itself.
    app.use((ctx, next) => {
      if (ctx.req.url?.startsWith('/poll')) polls.push(ctx.req);
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

  it('routes and reads the query of a poll, parks it, and answers it, without Koa parsing its URL', async function () {
    const stream = uniqueStream('url');
    polls.length = 0;
    const answer = fetch(`${url}/poll?streams=${stream}&timeout=30&limit=5`, { headers: { authorization: AUTH } });
    await untilParked(url, TEST_API_KEY, 1);
    expect(polls).to.have.length(1);
    // parseurl caches its Url object as req._parsedUrl: held by the request for the whole hold.
    expect((polls[0] as IncomingMessage & { _parsedUrl?: unknown })._parsedUrl).to.equal(undefined);
    const sent = await fetch(`${url}/send`, { method: 'POST', headers: { authorization: AUTH, 'content-type': 'application/json' }, body: JSON.stringify({ stream, data: 'hi' }) });
    expect(sent.status).to.equal(200);
    const res = await answer;
    expect(res.status).to.equal(200);
    expect((await res.json()).messages.map((m: { data: unknown }) => m.data)).to.deep.equal(['hi']);
  });
});
