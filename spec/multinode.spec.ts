/**
 * Several gateway processes on one Redis, or on one Redis Cluster, serve any client: real child
 * processes on loopback.
 */
import { expect } from 'chai';
import { spawnGateway, TEST_API_KEY, type ChildGateway } from './support/gateway.js';
import { poll, sendOk, untilParked } from './support/http.js';
import { sharedRedisCluster } from './support/redis-cluster.js';
import { sharedRedis, uniquePrefix } from './support/redis.js';

multiNode('several gateway processes on one Redis', async () => ({ REDIS_URL: (await sharedRedis()).url }));
multiNode('several gateway processes on one Redis Cluster (sharded pub/sub)', async () => ({ REDIS_URL: (await sharedRedisCluster()).url, POLLGATE_REDIS_CLUSTER: 'true' }));

function multiNode(name: string, redisEnv: () => Promise<Record<string, string>>): void {
  describe(name, function () {
    this.timeout(30_000);
    let a: ChildGateway;
    let b: ChildGateway;

    before(async function () {
      this.timeout(60_000);
      const env = { ...(await redisEnv()), POLLGATE_REDIS_PREFIX: uniquePrefix(), LOG_LEVEL: 'info' };
      [a, b] = await Promise.all([spawnGateway(env), spawnGateway(env)]);
    });
    after(async () => {
      await Promise.all([a?.kill(), b?.kill()]);
    });

    it('answers a poll parked on node A with a message sent to node B', async () => {
      const start = await poll(a.url, TEST_API_KEY, { streams: 'mn:1', timeout: 0 });
      const pending = poll(a.url, TEST_API_KEY, { streams: 'mn:1', cursor: start.cursor, timeout: 25 });
      await untilParked(a.url, TEST_API_KEY, 1);
      const started = Date.now();
      const sent = await sendOk(b.url, TEST_API_KEY, { stream: 'mn:1', data: 'from B', id: 'b-1' });
      const r = await pending;
      expect(r.messages).to.have.length(1);
      expect(r.messages[0]).to.include({ stream: 'mn:1', seq: sent.results[0].seq, id: 'b-1', data: 'from B' });
      expect(Date.now() - started).to.be.below(5000);
    });

    it('accepts a cursor from one node on the other: no sticky sessions', async () => {
      const start = await poll(a.url, TEST_API_KEY, { streams: 'mn:2', timeout: 0 });
      await sendOk(a.url, TEST_API_KEY, { stream: 'mn:2', data: 1 });
      const r1 = await poll(a.url, TEST_API_KEY, { streams: 'mn:2', cursor: start.cursor });
      await sendOk(a.url, TEST_API_KEY, { stream: 'mn:2', data: 2 });
      const r2 = await poll(b.url, TEST_API_KEY, { streams: 'mn:2', cursor: r1.cursor });
      expect(r1.messages.map((m) => m.data)).to.deep.equal([1]);
      expect(r2.messages.map((m) => m.data)).to.deep.equal([2]);
    });

    it('keeps per-stream order when two nodes send concurrently', async () => {
      const start = await poll(a.url, TEST_API_KEY, { streams: 'mn:3', timeout: 0 });
      await Promise.all([
        ...Array.from({ length: 20 }, (_, i) => sendOk(a.url, TEST_API_KEY, { stream: 'mn:3', data: `a${i}`, id: `a${i}` })),
        ...Array.from({ length: 20 }, (_, i) => sendOk(b.url, TEST_API_KEY, { stream: 'mn:3', data: `b${i}`, id: `b${i}` })),
      ]);
      const r = await poll(b.url, TEST_API_KEY, { streams: 'mn:3', cursor: start.cursor });
      expect(r.messages.map((m) => m.seq)).to.deep.equal(Array.from({ length: 40 }, (_, i) => i + 1));
      expect(new Set(r.messages.map((m) => m.id)).size).to.equal(40);
    });
  });
}
