/**
 * GET /history?stream=S&last=N: the last N retained messages in order, with a cursor that continues.
 */
import { expect } from 'chai';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { expectFetchError, poll, sendOk } from '../support/http.js';
import { sharedRedis, uniquePrefix } from '../support/redis.js';

async function history(gw: TestGateway, query: string, credential = gw.apiKey): Promise<Response> {
  return fetch(`${gw.url}/history?${query}`, { headers: { Authorization: `Bearer ${credential}` } });
}

for (const store of ['memory', 'redis'] as const) {
  describe(`GET /history (${store} store)`, () => {
    let gw: TestGateway;
    before(async () => {
      gw = await startGateway(store === 'redis' ? { redis: { url: (await sharedRedis()).url, keyPrefix: uniquePrefix() } } : {});
    });
    after(() => gw.shutdown());

    it('answers the last N messages oldest first, with a cursor a poll continues from', async () => {
      for (const d of ['a', 'b', 'c', 'd']) await sendOk(gw.url, gw.apiKey, { stream: 'h:1', data: d });
      const res = await history(gw, 'stream=h:1&last=2');
      expect(res.status).to.equal(200);
      const body = (await res.json()) as { stream: string; messages: { seq: number; data: string }[]; cursor: string };
      expect(body.stream).to.equal('h:1');
      expect(body.messages.map((m) => [m.seq, m.data])).to.deep.equal([[3, 'c'], [4, 'd']]);
      await sendOk(gw.url, gw.apiKey, { stream: 'h:1', data: 'e' });
      const next = await poll(gw.url, gw.apiKey, { streams: 'h:1', cursor: body.cursor, timeout: 0 });
      expect(next.messages.map((m: any) => m.data)).to.deep.equal(['e']);
    });

    it('answers what is retained when N is more, and an empty list with a usable cursor for an unknown stream', async () => {
      await sendOk(gw.url, gw.apiKey, { stream: 'h:2', data: 1 });
      const all = (await (await history(gw, 'stream=h:2&last=50')).json()) as { messages: unknown[] };
      expect(all.messages).to.have.length(1);
      const none = (await (await history(gw, 'stream=h:none&last=5')).json()) as { messages: unknown[]; cursor: string };
      expect(none.messages).to.deep.equal([]);
      await sendOk(gw.url, gw.apiKey, { stream: 'h:none', data: 'first' });
      const next = await poll(gw.url, gw.apiKey, { streams: 'h:none', cursor: none.cursor, timeout: 0 });
      expect(next.messages.map((m: any) => m.data)).to.deep.equal(['first']);
    });

    it('lets a token read only streams its patterns cover, and refuses a bad last or stream with 400', async () => {
      await sendOk(gw.url, gw.apiKey, { stream: 'h:3', data: 'x' });
      const ok = await gw.token({ sub: 'alice', streams: ['h:*'] });
      expect((await history(gw, 'stream=h:3&last=1', ok)).status).to.equal(200);
      const other = await gw.token({ sub: 'alice', streams: ['room:*'] });
      await expectFetchError(await history(gw, 'stream=h:3&last=1', other), 403, 'forbidden');
      for (const q of ['stream=h:3', 'stream=h:3&last=0', 'stream=h:3&last=1001', 'stream=h:3&last=x', 'last=1', 'stream=a%20b&last=1']) {
        await expectFetchError(await history(gw, q), 400, 'bad_request');
      }
      await expectFetchError(await fetch(`${gw.url}/history?stream=h:3&last=1`), 401, 'unauthorized');
    });
  });
}

describe('GET /history and GET /presence: the per-IP poll rate', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway({ rateLimits: { pollsPerIpPerSecond: 2 }, presence: { streams: ['pr:*'] } });
  });
  after(() => gw.shutdown());

  it('refuses a read over rateLimits.pollsPerIpPerSecond with 429 before reading the store', async () => {
    await sendOk(gw.url, gw.apiKey, { stream: 'h:rate', data: 1 });
    const reads: string[] = [];
    const read = gw.store.read.bind(gw.store);
    gw.store.read = (stream, ...rest) => (reads.push(stream), read(stream, ...rest));
    // 2 a second: within a few quick requests one is refused (a window may turn between them).
    let refused = false;
    for (let i = 0; i < 10 && !refused; i++) {
      const before = reads.length;
      const status = (await history(gw, 'stream=h:rate&last=1')).status;
      refused = status === 429;
      expect(reads.length - before, `reads of answer ${i} (${status})`).to.equal(refused ? 0 : 2);
    }
    expect(refused).to.equal(true);
    const presence = await fetch(`${gw.url}/presence?stream=pr:1`, { headers: { Authorization: `Bearer ${gw.apiKey}` } });
    expect(presence.status).to.equal(429);
    expect(((await presence.json()) as { error: { code: string } }).error.code).to.equal('rate_limited');
  });
});
