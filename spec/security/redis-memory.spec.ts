/**
 * Redis memory under a flood: every key the gateway writes has a TTL and every log is trimmed to
 * its retention; a flood of new streams costs a bounded, measured amount per stream; and a Redis
 * that is out of memory (maxmemory + noeviction) surfaces as 503 store_unavailable, not a crash.
 */
import { expect } from 'chai';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { send, sendOk, uniqueStream } from '../support/http.js';
import { rawPoll } from '../support/raw-http.js';
import { redisClient, startRedisServer, type RedisServer } from '../support/redis.js';

const RETENTION = { maxLength: 5, ttlSeconds: 600, metaTtlSeconds: 3600 };

async function usedMemory(url: string): Promise<number> {
  const redis = redisClient(url);
  try {
    return Number(/used_memory:(\d+)/.exec(await redis.info('memory'))![1]);
  } finally {
    redis.disconnect();
  }
}

describe('Redis memory', function () {
  describe('a flood of streams and messages', function () {
    this.timeout(60_000);
    const STREAMS = 10_000;
    let redis: RedisServer;
    let gw: TestGateway;

    before(async () => {
      redis = await startRedisServer();
      gw = await startGateway({
        redis: { url: redis.url },
        retention: { default: RETENTION },
        limits: { batchSize: 100 },
        rateLimits: { apiKeySendPerSecond: 0 },
      });
    });
    after(async () => {
      await gw?.shutdown();
      await redis?.stop();
    });

    it(`gives every key a TTL and trims every log to retention after ${STREAMS} new streams and a burst on a few`, async function () {
      const before = await usedMemory(redis.url);
      for (let b = 0; b < STREAMS / 100; b++) {
        const messages = Array.from({ length: 100 }, (_, i) => ({ stream: `flood:${b}:${i}`, data: { n: b * 100 + i } }));
        await sendOk(gw.url, gw.apiKey, { messages });
      }
      const hot = [uniqueStream(), uniqueStream()];
      for (let i = 0; i < 30; i++) await sendOk(gw.url, gw.apiKey, { streams: hot, data: 'x'.repeat(100) });
      const perStream = ((await usedMemory(redis.url)) - before) / STREAMS;

      const admin = redisClient(redis.url);
      try {
        // Polls leave rate-limit counters in Redis too; they live one second.
        for (const from of ['127.0.0.2', '127.0.0.3']) expect((await rawPoll(gw.url, gw.apiKey, { streams: hot[0]!, timeout: 0 }, from).response).status).to.equal(200);
        const counters = await admin.keys('*rl:*');
        expect(counters, 'rate-limit counters').to.have.length(2);
        for (const k of counters) expect(await admin.pttl(k)).to.be.within(1, 1000);

        let cursor = '0';
        let keys = 0;
        const noTtl: string[] = [];
        const tooLong: string[] = [];
        do {
          const [next, batch] = await admin.scan(cursor, 'COUNT', 1000);
          cursor = next;
          const facts = await Promise.all(
            batch.map(async (key) => {
              const [ttl, type] = await Promise.all([admin.pttl(key), admin.type(key)]);
              const size = type === 'list' ? await admin.llen(key) : type === 'zset' ? await admin.zcard(key) : 0;
              return { key, ttl, size };
            }),
          );
          for (const { key, ttl, size } of facts) {
            keys++;
            if (ttl === -1) noTtl.push(key);
            if (size > RETENTION.maxLength) tooLong.push(`${key}=${size}`);
          }
        } while (cursor !== '0');
        // A meta hash and a log per stream; these sends name no ids, so no stream has a set of ids (retryKey).
        expect(keys).to.be.at.least(STREAMS * 2);
        expect(noTtl, 'keys without a TTL').to.deep.equal([]);
        expect(tooLong, 'logs longer than retention').to.deep.equal([]);
      } finally {
        admin.disconnect();
      }
      // docs/SECURITY.md quotes this figure for the 100,000-stream case (about 100x it).
      console.log(`      (Redis bytes per new one-message stream: ${Math.round(perStream)})`);
      expect(perStream).to.be.below(2048);
    });
  });

  describe('out of memory (maxmemory 2mb, noeviction)', function () {
    this.timeout(30_000);
    let redis: RedisServer;
    let gw: TestGateway;

    before(async () => {
      redis = await startRedisServer({ extraArgs: ['--maxmemory', '2mb', '--maxmemory-policy', 'noeviction'] });
      gw = await startGateway({ redis: { url: redis.url }, rateLimits: { apiKeySendPerSecond: 0 } });
    });
    after(async () => {
      await gw?.shutdown();
      await redis?.stop();
    });

    it('answers sends 503 store_unavailable with Retry-After once Redis refuses writes, keeps serving reads, and recovers when memory is freed', async function () {
      const stream = uniqueStream();
      const data = 'x'.repeat(60 * 1024);
      // Each message goes to a new stream: the path that creates keys (and once slipped past maxmemory).
      let refused: Response | undefined;
      for (let i = 0; i < 200 && !refused; i++) {
        const res = await fetch(`${gw.url}/send`, {
          method: 'POST',
          headers: { authorization: `Bearer ${gw.apiKey}`, 'content-type': 'application/json' },
          body: JSON.stringify({ stream: `${stream}:${i}`, data }),
        });
        if (res.status === 200) await res.arrayBuffer();
        else refused = res;
      }
      expect(refused, 'no send was refused').to.not.equal(undefined);
      expect(refused!.status).to.equal(503);
      expect(refused!.headers.get('retry-after')).to.equal('1');
      expect(((await refused!.json()) as { error: { code: string } }).error.code).to.equal('store_unavailable');

      // The process is alive and reads still work (polls also write rate-limit counters: those fall back).
      expect((await fetch(`${gw.url}/healthz`)).status).to.equal(200);
      const read = await rawPoll(gw.url, gw.apiKey, { streams: `${stream}:0`, since: 'earliest', timeout: 0 }).response;
      expect(read.status, read.body).to.equal(200);
      expect(JSON.parse(read.body).messages).to.have.length(1);

      const admin = redisClient(redis.url);
      try {
        await admin.config('SET', 'maxmemory', '0');
      } finally {
        admin.disconnect();
      }
      expect((await send(gw.url, gw.apiKey, { stream, data: 'after' })).status).to.equal(200);
    });
  });
});
