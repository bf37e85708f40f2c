/**
 * Rate limits (rateLimits.*, rate-limiter-flexible): messages sent per client subject and per API key,
 * new polls per client IP; shared by every process on one Redis; still enforced per process
 * (never a 500) while Redis is away.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { spawnGateway, startGateway, TEST_API_KEY, type ChildGateway, type TestGateway } from '../support/gateway.js';
import { send, uniqueStream } from '../support/http.js';
import { rawPoll, rawRequest } from '../support/raw-http.js';
import { redisClient, sharedRedis, startRedisServer, uniquePrefix, type RedisServer } from '../support/redis.js';

async function statuses(n: number, call: () => Promise<number>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(await call());
  return out;
}

describe('rate limits', function () {
  describe('in one process', function () {
    let gw: TestGateway;
    beforeEach(async () => {
      gw = await startGateway({ rateLimits: { sendPerSecond: 3, apiKeySendPerSecond: 4, pollsPerIpPerSecond: 3 } });
    });
    afterEach(async () => gw.shutdown());

    it('answers 429 rate_limited with Retry-After to a client subject over rateLimits.sendPerSecond; other subjects are not affected', async function () {
      const stream = uniqueStream();
      const alice = await gw.token({ sub: 'alice', streams: [], pub: ['room:*'] });
      const bob = await gw.token({ sub: 'bob', streams: [], pub: ['room:*'] });
      expect(await statuses(3, async () => (await send(gw.url, alice, { stream, data: 1 })).status)).to.deep.equal([200, 200, 200]);
      const res = await fetch(`${gw.url}/send`, {
        method: 'POST',
        headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/json' },
        body: JSON.stringify({ stream, data: 1 }),
      });
      expect(res.status).to.equal(429);
      expect(res.headers.get('retry-after')).to.equal('1');
      expect(((await res.json()) as { error: { code: string } }).error.code).to.equal('rate_limited');
      // Another token of the same subject shares the limit; another subject does not.
      const alice2 = await gw.token({ sub: 'alice', streams: [], pub: ['room:*'], ttlSeconds: 60 });
      expect((await send(gw.url, alice2, { stream, data: 1 })).status).to.equal(429);
      expect((await send(gw.url, bob, { stream, data: 1 })).status).to.equal(200);
    });

    it('counts every append, so a fan-out cannot create streams faster than the limit; a request over a whole second is refused 400', async function () {
      const carol = await gw.token({ sub: 'carol', streams: [], pub: ['room:*'] });
      const [a, b, c, d] = [uniqueStream(), uniqueStream(), uniqueStream(), uniqueStream()];
      expect((await send(gw.url, carol, { streams: [a, b, c, d], data: 1 })).status).to.equal(400);
      expect((await send(gw.url, carol, { messages: [{ streams: [a, b], data: 1 }, { stream: c, data: 2 }] })).status).to.equal(200);
      expect((await send(gw.url, carol, { stream: d, data: 1 })).status).to.equal(429);
    });

    it('limits each API key by rateLimits.apiKeySendPerSecond', async function () {
      const stream = uniqueStream();
      expect(await statuses(5, async () => (await send(gw.url, gw.apiKey, { stream, data: 1 })).status)).to.deep.equal([200, 200, 200, 200, 429]);
    });

    it('answers 429 to an address opening polls faster than rateLimits.pollsPerIpPerSecond, before checking credentials; other addresses still poll', async function () {
      const poll = (credential: string, from: string) => rawPoll(gw.url, credential, { streams: 'room:1', timeout: 0 }, from).response;
      expect((await Promise.all([1, 2, 3].map(() => poll(gw.apiKey, '127.0.0.2')))).map((r) => r.status)).to.deep.equal([200, 200, 200]);
      const refused = await poll('not-a-valid-key-at-all', '127.0.0.2');
      expect(refused.status).to.equal(429);
      expect(refused.headers['retry-after']).to.equal('1');
      expect((await poll(gw.apiKey, '127.0.0.3')).status).to.equal(200);
    });
  });

  describe('the client IP behind proxies (server.trustProxyHops)', function () {
    const pollFrom = (gw: TestGateway, forwardedFor: string) =>
      rawRequest(gw.url, '/poll?streams=room:1&timeout=0', { headers: { authorization: `Bearer ${gw.apiKey}`, 'x-forwarded-for': forwardedFor } }).response;

    it('ignores X-Forwarded-For by default, so a client cannot dodge per-IP limits by forging it', async function () {
      const gw = await startGateway({ rateLimits: { pollsPerIpPerSecond: 2 } });
      try {
        const res = [];
        for (const ip of ['10.0.0.1', '10.0.0.2', '10.0.0.3']) res.push((await pollFrom(gw, ip)).status);
        expect(res).to.deep.equal([200, 200, 429]);
      } finally {
        await gw.shutdown();
      }
    });

    it('keys limits by the forwarded client address when trustProxyHops is 1', async function () {
      const gw = await startGateway({ rateLimits: { pollsPerIpPerSecond: 2 }, server: { trustProxyHops: 1 } });
      try {
        const res = [];
        for (const ip of ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.1', '10.0.0.1']) res.push((await pollFrom(gw, ip)).status);
        expect(res).to.deep.equal([200, 200, 200, 200, 429]);
      } finally {
        await gw.shutdown();
      }
    });
  });

  describe('shared across processes on one Redis', function () {
    this.timeout(30_000);
    let a: ChildGateway;
    let b: ChildGateway;
    let dir: string;
    let prefix: string;

    before(async () => {
      const redis = await sharedRedis();
      dir = mkdtempSync(join(tmpdir(), 'pollgate-rl-'));
      const file = join(dir, 'config.json');
      writeFileSync(file, JSON.stringify({ rateLimits: { apiKeySendPerSecond: 5 } }));
      prefix = uniquePrefix();
      const env = { REDIS_URL: redis.url, POLLGATE_REDIS_PREFIX: prefix, POLLGATE_CONFIG: file };
      [a, b] = await Promise.all([spawnGateway(env), spawnGateway(env)]);
    });
    after(async () => {
      await Promise.all([a?.kill(), b?.kill()]);
      rmSync(dir, { recursive: true, force: true });
    });

    it('lets through at most rateLimits.apiKeySendPerSecond sends per second in total, however they are spread over nodes', async function () {
      const stream = uniqueStream();
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) => send(i % 2 ? a.url : b.url, TEST_API_KEY, { stream, data: i }).then((r) => r.status)),
      );
      expect(results.filter((s) => s === 200)).to.have.length(5);
      expect(results.filter((s) => s === 429)).to.have.length(5);
      // The counter is a Redis key with a TTL, under the deployment's prefix.
      const redis = redisClient((await sharedRedis()).url);
      try {
        const keys = await redis.keys(`${prefix}rl:*`);
        expect(keys).to.not.be.empty;
        for (const k of keys) expect(await redis.pttl(k)).to.be.within(1, 1000);
      } finally {
        redis.disconnect();
      }
    });
  });

  describe('while Redis is down', function () {
    let redis: RedisServer;
    let gw: TestGateway;

    before(async () => {
      redis = await startRedisServer();
      gw = await startGateway({ redis: { url: redis.url, keyPrefix: uniquePrefix(), commandTimeoutMs: 200 }, rateLimits: { apiKeySendPerSecond: 3 } });
    });
    after(async () => {
      await gw?.shutdown();
      await redis?.stop();
    });

    it('keeps limiting per process (insurance counters): sends get 503 store_unavailable, then 429, never 500', async function () {
      await redis.stop();
      const stream = uniqueStream();
      const results = await statuses(5, async () => (await send(gw.url, gw.apiKey, { stream, data: 1 })).status);
      expect(results).to.deep.equal([503, 503, 503, 429, 429]);
      const health = await fetch(`${gw.url}/healthz`);
      expect(health.status).to.equal(200);
    });
  });
});
