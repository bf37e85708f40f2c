/**
 * A request's URL is read, not kept (originTarget, lib/http/target.ts): the routes and the router
 * read the path and query as Koa's ctx.path and ctx.querystring would, without the Url object
 * Koa's getters cache on the request, which a parked poll held for its whole hold (that a parked
 * poll's request has none: spec/http/query-params.spec.ts).
 */
import type { IncomingMessage } from 'node:http';
import { expect } from 'chai';
import fc from 'fast-check';
import Koa from 'koa';
import { originTarget } from '../../lib/http/target.js';

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
