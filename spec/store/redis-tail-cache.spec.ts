/**
 * The Redis store's lingering subscriptions and tail cache against a real Redis and the run's
 * Redis Cluster (sharded pub/sub): reads answered from memory only when exact, appends from other
 * connections seen, the seeding race, killed subscriber connections, TTL and maxLength
 * retention, and a Redis restart.
 */
import { expect } from 'chai';
import type { Cluster, Redis } from 'ioredis';
import type { RetentionRule } from '../../lib/config.js';
import { createLogger } from '../../lib/log.js';
import { RedisKeys } from '../../lib/store/redis-keys.js';
import { RedisStore, type TailCacheConfig } from '../../lib/store/redis-store.js';
import { HEAD_ONLY, SERVER_SENDER, messageBytes, messageTail, type NewMessage, type StreamRead, type WakeHint } from '../../lib/store/store.js';
import { startGateway, testConfig, type TestGateway } from '../support/gateway.js';
import { poll, sendOk } from '../support/http.js';
import { commandCallsOn, sharedRedisCluster, shards } from '../support/redis-cluster.js';
import { redisClient, sharedRedis, startRedisServer, uniquePrefix, type RedisServer } from '../support/redis.js';
import { waitFor } from '../support/wait.js';

const log = createLogger('silent');
const RULE: RetentionRule = { maxLength: 1000, ttlSeconds: 3600, metaTtlSeconds: 86400 };
const retention = (stream: string): RetentionRule => (stream.startsWith('short:') ? { ...RULE, maxLength: 3 } : stream.startsWith('ttl:') ? { ...RULE, ttlSeconds: 2 } : RULE);

function msg(id: string): NewMessage {
  return { id, sender: SERVER_SENDER, tail: messageTail(id, 1700000000000, JSON.stringify(id)) };
}

interface Pair {
  /** The store under test, with the cache. */
  store: RedisStore;
  /** Another gateway's store on the same keys (no cache): its appends reach `store` only as wake-ups. */
  other: RedisStore;
  clock: { offset: number };
  /** Resolves when `store` has seen a wake-up for the stream at or past lastSeq. */
  wakeAt(stream: string, lastSeq: number): Promise<WakeHint>;
  close(): Promise<void>;
}

async function pair(url: string, tail: Partial<TailCacheConfig> = {}, cluster = false): Promise<Pair> {
  const keyPrefix = uniquePrefix();
  const clock = { offset: 0 };
  const tailCache = { ...testConfig().redis.tailCache, ...tail };
  const store = new RedisStore({ url, keyPrefix, cluster, commandTimeoutMs: 2000, retention, tailCache, now: () => performance.now() + clock.offset, log });
  const other = new RedisStore({ url, keyPrefix, cluster, commandTimeoutMs: 2000, retention, log });
  await Promise.all([store.connect(), other.connect()]);
  const waiting: { stream: string; lastSeq: number; resolve: (h: WakeHint) => void }[] = [];
  store.setListener({
    wake(stream, hint) {
      for (const w of [...waiting]) {
        if (w.stream !== stream || hint.lastSeq < w.lastSeq) continue;
        waiting.splice(waiting.indexOf(w), 1);
        w.resolve(hint);
      }
    },
    resync() {},
  });
  return {
    store,
    other,
    clock,
    wakeAt: (stream, lastSeq) => new Promise((resolve) => waiting.push({ stream, lastSeq, resolve })),
    close: async () => void (await Promise.all([store.close(), other.close()])),
  };
}

const seqs = (r: StreamRead) => r.messages.map((m) => JSON.parse(m).seq as number);

/** Where a suite runs: a Redis or a cluster, an admin client, and a way to cut every subscriber connection. */
interface Target {
  url: string;
  cluster: boolean;
  admin(): Redis | Cluster;
  killSubscribers(): Promise<void>;
}

const single = async (): Promise<Target> => {
  const { url } = await sharedRedis();
  return {
    url,
    cluster: false,
    admin: () => redisClient(url),
    async killSubscribers() {
      const admin = redisClient(url);
      await admin.client('KILL', 'TYPE', 'pubsub').finally(() => admin.disconnect());
    },
  };
};

const cluster = async (): Promise<Target> => {
  const c = await sharedRedisCluster();
  return {
    url: c.url,
    cluster: true,
    admin: () => c.client(),
    async killSubscribers() {
      for (const master of await shards(c.nodes[0]!.port)) {
        const admin = redisClient(`redis://127.0.0.1:${master.port}`);
        await admin.client('KILL', 'TYPE', 'pubsub').finally(() => admin.disconnect());
      }
    },
  };
};

tailCacheSuite('RedisStore tail cache (Redis only)', single);
tailCacheSuite('RedisStore tail cache on a Redis Cluster (sharded pub/sub)', cluster);

function tailCacheSuite(name: string, target: () => Promise<Target>): void {
  describe(name, function () {
    this.timeout(30_000);
    let p: Pair;
    let t: Target;
    before(async function () {
      this.timeout(60_000);
      t = await target();
    });
    beforeEach(async () => {
      p = await pair(t.url, {}, t.cluster);
    });
    afterEach(async () => p.close());

    it('answers reads at the head from memory once seeded, exactly as Redis does', async () => {
      await p.other.append('a:1', [msg('a'), msg('b')]);
      await p.store.subscribe('a:1');
      const fromRedis = await p.store.read('a:1', 0, 10);
      const before = p.store.stats();
      const heads = await Promise.all([p.store.read('a:1', 2, 10), p.store.read('a:1', HEAD_ONLY, 0), p.store.read('a:1', 1, 10), p.store.read('a:1', 0, 1)]);
      expect(p.store.stats().redisReads).to.equal(before.redisReads);
      expect(p.store.stats().tailHits - before.tailHits).to.equal(4);
      const truth = await Promise.all([p.other.read('a:1', 2, 10), p.other.read('a:1', HEAD_ONLY, 0), p.other.read('a:1', 1, 10), p.other.read('a:1', 0, 1)]);
      expect(heads).to.deep.equal(truth);
      expect(fromRedis).to.deep.equal(await p.other.read('a:1', 0, 10));
    });

    it('cuts reads from memory by maxBytes exactly as the read script does', async () => {
      await p.other.append('a:b', ['a', 'b', 'c', 'd'].map((id) => msg(id)));
      await p.store.subscribe('a:b');
      const all = await p.store.read('a:b', 0, 10);
      const size = messageBytes(all.messages[0]!);
      const bounds = [size - 1, size, 2 * size + 1, 3 * size, 100 * size, 0];
      const before = p.store.stats();
      const cached = await Promise.all(bounds.map((b) => p.store.read('a:b', 0, 10, b)));
      expect(p.store.stats().tailHits - before.tailHits).to.equal(bounds.length);
      const truth = await Promise.all(bounds.map((b) => p.other.read('a:b', 0, 10, b)));
      expect(cached).to.deep.equal(truth);
      expect(cached.map((r) => [r.messages.length, r.nextBytes])).to.deep.equal([[0, size], [1, size], [2, size], [3, size], [4, undefined], [4, undefined]]);
    });

    it('follows appends made by another connection through their wake-ups', async () => {
      await p.store.subscribe('a:2');
      await p.other.append('a:2', [msg('a')]);
      await p.store.read('a:2', 0, 10);
      const woke = p.wakeAt('a:2', 3);
      await p.other.append('a:2', [msg('b'), msg('c')]);
      await woke;
      const reads = p.store.stats().redisReads;
      const r = await p.store.read('a:2', 1, 10);
      expect(p.store.stats().redisReads).to.equal(reads);
      expect(r).to.deep.equal(await p.other.read('a:2', 1, 10));
      expect(seqs(r)).to.deep.equal([2, 3]);
    });

    it('reads its own appends at once, before their wake-ups arrive', async () => {
      await p.store.subscribe('a:3');
      await p.store.append('a:3', [msg('a')]);
      await p.store.read('a:3', 0, 10);
      await p.store.append('a:3', [msg('b')]);
      // No await of the wake-up: a miss goes to Redis, a hit must already include seq 2.
      expect(seqs(await p.store.read('a:3', 1, 10))).to.deep.equal([2]);
    });

    it('does not seed from a read whose reply came after a wake-up newer than the read', async () => {
      await p.store.subscribe('race:1');
      const seen = p.wakeAt('race:1', 1);
      await p.other.append('race:1', [msg('a')]);
      await p.store.read('race:1', 0, 10);
      await seen;
      // Drop what the first read seeded, then force the interleaving on the next read: it runs in
      // Redis, then (before its reply reaches the store) another gateway appends and the store gets
      // that wake-up. A cache seeded from the reply would answer "nothing after 1" for ever.
      p.store['tail']!.forget();
      const call = p.store['call'].bind(p.store);
      let armed = true;
      p.store['call'] = async <T>(op: () => Promise<T>): Promise<T> => {
        const reply = await call(op);
        if (armed) {
          armed = false;
          const woke = p.wakeAt('race:1', 2);
          await p.other.append('race:1', [msg('b')]);
          await woke;
        }
        return reply;
      };
      const stale = await p.store.read('race:1', 1, 10);
      expect(armed).to.equal(false);
      expect(stale.lastSeq, 'the held reply').to.equal(1);
      const reads = p.store.stats().redisReads;
      const r = await p.store.read('race:1', 1, 10);
      expect(seqs(r)).to.deep.equal([2]);
      expect(p.store.stats().redisReads, 'a miss: nothing was seeded').to.equal(reads + 1);
      // That read seeded properly: the next one is a hit.
      expect(await p.store.read('race:1', 2, 10)).to.deep.equal(await p.other.read('race:1', 2, 10));
      expect(p.store.stats().redisReads).to.equal(reads + 1);
    });

    it('drops everything when the subscriber connection is killed, and reads Redis again', async () => {
      await p.store.subscribe('kill:1');
      await p.other.append('kill:1', [msg('a')]);
      await p.store.read('kill:1', 0, 10);
      expect(p.store.stats().tailStreams).to.equal(1);
      await t.killSubscribers();
      await waitFor(() => p.store.stats().tailStreams === 0, 'the cache to be dropped');
      // Published while the subscriber is away: no wake-up will ever say so.
      await p.other.append('kill:1', [msg('b')]);
      expect(seqs(await p.store.read('kill:1', 1, 10))).to.deep.equal([2]);
    });

    it('reports the retained range after maxLength trims, so an old position reads as a gap', async () => {
      await p.store.subscribe('short:1');
      await p.other.append('short:1', [msg('a')]);
      await p.store.read('short:1', 0, 10);
      for (const [i, id] of ['b', 'c', 'd', 'e'].entries()) {
        const woke = p.wakeAt('short:1', i + 2);
        await p.other.append('short:1', [msg(id)]);
        await woke;
      }
      const reads = p.store.stats().redisReads;
      const r = await p.store.read('short:1', 1, 10);
      expect(p.store.stats().redisReads).to.equal(reads);
      expect(r).to.deep.equal(await p.other.read('short:1', 1, 10));
      expect(r).to.include({ firstSeq: 3, lastSeq: 5, after: 2 });
    });

    it('stops answering from memory before the TTL could have expired the log', async () => {
      await p.store.subscribe('ttl:1');
      await p.other.append('ttl:1', [msg('a')]);
      await p.store.read('ttl:1', 0, 10);
      const reads = p.store.stats().redisReads;
      await p.store.read('ttl:1', 0, 10);
      expect(p.store.stats().redisReads, 'a hit while fresh').to.equal(reads);
      // ttlSeconds 2, margin 1 s: after 1 s by the cache's clock, Redis must be asked.
      p.clock.offset += 1000;
      await p.store.read('ttl:1', 0, 10);
      expect(p.store.stats().redisReads).to.equal(reads + 1);
    });

    it('never serves messages Redis expired (real clock, ttlSeconds 2)', async () => {
      await p.store.subscribe('ttl:2');
      await p.other.append('ttl:2', [msg('a')]);
      expect(seqs(await p.store.read('ttl:2', 0, 10))).to.deep.equal([1]);
      const admin = t.admin();
      try {
        const logKey = new RedisKeys(p.store['options'].keyPrefix).log('ttl:2');
        const checks: StreamRead[] = [];
        // Read all along until Redis has expired the log: every answer must match the log then.
        await new Promise<void>((resolve, reject) => {
          const tick = async () => {
            try {
              // Gone before the read started: nothing may bring it back but an append.
              const gone = (await admin.exists(logKey)) === 0;
              const r = await p.store.read('ttl:2', 0, 10);
              checks.push(r);
              if (gone) {
                expect(r.messages, 'served a message of an expired log').to.deep.equal([]);
                return resolve();
              }
              setTimeout(tick, 50);
            } catch (err) {
              reject(err);
            }
          };
          void tick();
        });
        expect(checks.at(-1)).to.include({ lastSeq: 1, firstSeq: 2 });
      } finally {
        admin.disconnect();
      }
    });
  });
}

describe('RedisStore tail cache (Redis only)', function () {
  let p: Pair;
  beforeEach(async () => {
    p = await pair((await sharedRedis()).url);
  });
  afterEach(async () => p.close());

  describe('lingering subscriptions', () => {
    it('keeps the channel subscribed after unsubscribe, and subscribes again without a SUBSCRIBE', async () => {
      const admin = redisClient((await sharedRedis()).url);
      const channel = new RedisKeys(p.store['options'].keyPrefix).wakeChannel('l:1');
      try {
        await p.store.subscribe('l:1');
        await p.store.unsubscribe('l:1');
        expect(p.store.stats()).to.include({ lingeringStreams: 1, subscribedStreams: 1 });
        expect(await admin.pubsub('NUMSUB', channel)).to.deep.equal([channel, 1]);
        const subscribes = async () => Number(/cmdstat_subscribe:calls=(\d+)/.exec(await admin.info('commandstats'))?.[1] ?? 0);
        const before = await subscribes();
        await p.store.subscribe('l:1');
        expect(await subscribes()).to.equal(before);
        expect(p.store.stats().lingeringStreams).to.equal(0);
      } finally {
        admin.disconnect();
      }
    });

    it('wakes no listener for a lingering stream, but keeps its cache following', async () => {
      await p.store.subscribe('l:2');
      await p.store.subscribe('l:3');
      await p.other.append('l:2', [msg('a')]);
      await p.store.read('l:2', 0, 10);
      await p.store.unsubscribe('l:2');
      const woke = p.wakeAt('l:3', 1);
      let l2Woke = false;
      void p.wakeAt('l:2', 2).then(() => (l2Woke = true));
      await p.other.append('l:2', [msg('b')]);
      await p.other.append('l:3', [msg('c')]);
      await woke;
      expect(l2Woke).to.equal(false);
      const reads = p.store.stats().redisReads;
      expect(seqs(await p.store.read('l:2', 1, 10))).to.deep.equal([2]);
      expect(p.store.stats().redisReads).to.equal(reads);
    });

    it('unsubscribes after lingerSeconds, and the oldest first beyond maxStreams', async () => {
      const q = await pair((await sharedRedis()).url, { lingerSeconds: 1, maxStreams: 2 });
      const admin = redisClient((await sharedRedis()).url);
      const keys = new RedisKeys(q.store['options'].keyPrefix);
      const subscribers = async (s: string) => ((await admin.pubsub('NUMSUB', keys.wakeChannel(s))) as [string, number])[1];
      try {
        for (const s of ['m:1', 'm:2', 'm:3']) await q.store.subscribe(s);
        for (const s of ['m:1', 'm:2', 'm:3']) await q.store.unsubscribe(s);
        expect(q.store.stats()).to.include({ lingeringStreams: 2, subscribedStreams: 2 });
        // A PING on the subscriber connection is answered after the UNSUBSCRIBE sent before it.
        await q.store['sub']!.ping();
        expect(await subscribers('m:1')).to.equal(0);
        expect(await subscribers('m:3')).to.equal(1);
        await waitFor(() => q.store.stats().subscribedStreams === 0, 'the lingering subscriptions to end', 5000);
        await q.store['sub']!.ping();
        expect(await subscribers('m:2') + (await subscribers('m:3'))).to.equal(0);
        expect(q.store.stats()).to.include({ lingeringStreams: 0, tailStreams: 0 });
      } finally {
        admin.disconnect();
        await q.close();
      }
    });
  });
});

describe('gateway with the tail cache (Redis)', function () {
  this.timeout(30_000);

  async function stats(gw: TestGateway): Promise<Record<string, number>> {
    const r = await fetch(`${gw.url}/stats`, { headers: { authorization: `Bearer ${gw.apiKey}` } });
    return ((await r.json()) as { storeStats: Record<string, number> }).storeStats;
  }

  /** A poll that returns to the head it left costs no Redis command; parking again costs only the append. */
  async function returningPoll(gw: TestGateway, scriptCalls: () => Promise<number>): Promise<void> {
    const start = await poll(gw.url, gw.apiKey, { streams: 'z:1', timeout: 0 });
    const parked = poll(gw.url, gw.apiKey, { streams: 'z:1', cursor: start.cursor, timeout: 30 });
    await waitFor(() => gw.longPolls.size === 1, 'the poll to park');
    await sendOk(gw.url, gw.apiKey, { stream: 'z:1', data: 'x' });
    const got = await parked;
    expect(got.messages.map((m) => m.data)).to.deep.equal(['x']);
    // The poll left; its stream lingers. Seed once (the wake-up of our own send may still be on its way).
    await poll(gw.url, gw.apiKey, { streams: 'z:1', cursor: got.cursor, timeout: 0 });
    const calls = await scriptCalls();
    const before = await stats(gw);
    const again = await poll(gw.url, gw.apiKey, { streams: 'z:1', cursor: got.cursor, timeout: 0 });
    expect(again.messages).to.deep.equal([]);
    const after = await stats(gw);
    expect(after.redisReads).to.equal(before.redisReads);
    expect(await scriptCalls()).to.equal(calls);
    // Parking again costs no SUBSCRIBE and no Redis read: the cache knows the head, so the poll
    // reads nothing when it arrives nor once subscribed, and the wake-up answers it.
    const next = poll(gw.url, gw.apiKey, { streams: 'z:1', cursor: got.cursor, timeout: 30 });
    await waitFor(() => gw.longPolls.size === 1, 'the poll to park');
    await sendOk(gw.url, gw.apiKey, { stream: 'z:1', data: 'y' });
    expect((await next).messages.map((m) => m.data)).to.deep.equal(['y']);
    expect((await stats(gw)).redisReads).to.equal(before.redisReads);
    expect(await scriptCalls(), 'the append only').to.equal(calls + 1);
  }

  const NO_RATE_LIMITS = { sendPerSecond: 0, apiKeySendPerSecond: 0, pollsPerIpPerSecond: 0 };

  it('answers a returning poll at the head with no Redis command at all', async () => {
    const redis = await startRedisServer();
    const gw = await startGateway({ redis: { url: redis.url }, rateLimits: NO_RATE_LIMITS });
    const admin = redisClient(redis.url);
    const scriptCalls = async () => {
      const info = await admin.info('commandstats');
      return [...info.matchAll(/cmdstat_(?:fcall|evalsha|eval|subscribe|unsubscribe):calls=(\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
    };
    try {
      await returningPoll(gw, scriptCalls);
    } finally {
      admin.disconnect();
      await gw.shutdown();
      await redis.stop();
    }
  });

  it('answers a returning poll at the head with no Redis command at all, on a Redis Cluster', async () => {
    const c = await sharedRedisCluster();
    const gw = await startGateway({ redis: { url: c.url, cluster: true, keyPrefix: uniquePrefix() }, rateLimits: NO_RATE_LIMITS });
    const commands = ['fcall', 'evalsha', 'eval', 'subscribe', 'unsubscribe', 'ssubscribe', 'sunsubscribe'];
    const scriptCalls = async () => Object.values(await commandCallsOn(c.nodes.map((n) => n.port), commands)).reduce((a, b) => a + b, 0);
    try {
      await returningPoll(gw, scriptCalls);
    } finally {
      await gw.shutdown();
    }
  });

  it('reports a reset after a Redis restart exactly as without the cache', async () => {
    const answers: unknown[] = [];
    for (const enabled of [true, false]) {
      let redis: RedisServer = await startRedisServer();
      const gw = await startGateway({ redis: { url: redis.url, tailCache: { enabled } } });
      try {
        const start = await poll(gw.url, gw.apiKey, { streams: 'rs:1', timeout: 0 });
        const parked = poll(gw.url, gw.apiKey, { streams: 'rs:1', cursor: start.cursor, timeout: 30 });
        await waitFor(() => gw.longPolls.size === 1, 'the poll to park');
        await sendOk(gw.url, gw.apiKey, { stream: 'rs:1', data: 'before', id: 'before' });
        const seen = await parked;
        await poll(gw.url, gw.apiKey, { streams: 'rs:1', cursor: seen.cursor, timeout: 0 });
        // Restart without persistence: the log is gone.
        const port = redis.port;
        await redis.stop();
        redis = await startRedisServer({ port });
        for (;;) {
          const r = await fetch(`${gw.url}/send`, { method: 'POST', headers: { authorization: `Bearer ${gw.apiKey}`, 'content-type': 'application/json' }, body: JSON.stringify({ stream: 'rs:1', data: 'after', id: 'after' }) });
          if (r.status === 200) break;
          expect(r.status).to.equal(503);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        const r = await poll(gw.url, gw.apiKey, { streams: 'rs:1', cursor: seen.cursor, timeout: 30 });
        answers.push({ resets: r.resets, messages: r.messages.map((m) => [m.seq, m.data]) });
      } finally {
        await gw.shutdown();
        await redis.stop();
      }
    }
    expect(answers[0]).to.deep.equal({ resets: ['rs:1'], messages: [[1, 'after']] });
    expect(answers[0]).to.deep.equal(answers[1]);
  });
});
