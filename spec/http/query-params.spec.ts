import type { IncomingMessage, ServerResponse } from 'node:http';
import { expect } from 'chai';
import Koa, { type Context } from 'koa';
import { queryParams } from '../../lib/http/params.js';
import { TEST_API_KEY, TEST_SECRET } from '../support/gateway.js';
import { gatewayInHost, type HostedGateway } from '../support/host-app.js';
import { poll, uniqueStream, untilParked } from '../support/http.js';

/** A Koa context for `url`, as the app would build it for a request. */
function contextFor(url: string): Context {
  const req = { url, method: 'GET', headers: { host: 'x' }, socket: {} } as unknown as IncomingMessage;
  return new Koa().createContext(req, {} as ServerResponse);
}

describe('queryParams (lib/http/params.ts)', function () {
  it("gives what Koa's ctx.query gives, for ordinary and tricky queries", function () {
    const queries = [
      '', 'streams=a', 'streams=a,b&cursor=v1.AbC-_x&timeout=25', 'streams=a&streams=b&streams=c', 'token=abc.def.ghi&callback=cb_1',
      'q=a+b%20c', 'q=%E2%82%AC%F0%9F%98%80', 'q=%zz&r=%', 'q=%C3%28', 'flag', 'flag=', '=value', 'a=1&&b=2', 'a==b', '__proto__=x&constructor=y',
      'a=1&A=2', 'a[]=1&a[]=2', 'x=' + 'y'.repeat(5000), Array.from({ length: 1500 }, (_, i) => `k${i}=${i}`).join('&'),
    ];
    for (const q of queries) {
      const url = q ? `/poll?${q}` : '/poll';
      expect({ ...queryParams(contextFor(url)) }, q.slice(0, 60)).to.deep.equal({ ...contextFor(url).query });
    }
  });

  it('parses the query of an absolute-form target as Koa does', function () {
    const url = 'http://gateway.example/poll?streams=a&timeout=1';
    expect({ ...queryParams(contextFor(url)) }).to.deep.equal({ streams: 'a', timeout: '1' });
  });

  describe('a parked poll', function () {
    let host: HostedGateway;

    before(async function () {
      host = await gatewayInHost({ auth: { apiKeys: [TEST_API_KEY], secret: TEST_SECRET }, log: { level: 'silent' } });
    });

    after(async function () {
      await host?.close();
    });

    it('holds no parsed query and no parsed URL while it waits', async function () {
      const stream = uniqueStream('query');
      const url = host.url;
      const answered = poll(url, TEST_API_KEY, { streams: stream, timeout: 30 });
      await untilParked(url, TEST_API_KEY, 1);
      const parked = host.lastPoll()!;
      const request = parked.request as unknown as { _querycache?: unknown };
      expect(request._querycache).to.equal(undefined);
      // Nor the Url object Koa's ctx.path and ctx.querystring cache on req (originTarget, lib/http/target.ts).
      expect((parked.req as { _parsedUrl?: unknown })._parsedUrl).to.equal(undefined);
      // Koa keeps what ctx.query parsed right there: the check above would see it.
      expect(parked.query.streams).to.equal(stream);
      expect(request._querycache).not.to.equal(undefined);
      const sent = await fetch(`${url}/send`, { method: 'POST', headers: { authorization: `Bearer ${TEST_API_KEY}`, 'content-type': 'application/json' }, body: JSON.stringify({ stream, data: 1 }) });
      expect(sent.status).to.equal(200);
      expect((await answered).messages).to.have.length(1);
    });
  });
});
