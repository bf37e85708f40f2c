/**
 * Long-poll behaviour over real HTTP, against the memory store and a real Redis.
 */
import { expect } from 'chai';
import { MemoryStore } from '../lib/store/memory-store.js';
import { RedisStore } from '../lib/store/redis-store.js';
import { RedisKeys } from '../lib/store/redis-keys.js';
import { createLogger } from '../lib/log.js';
import type { Store } from '../lib/store/store.js';
import { startGateway, testConfig, type TestGateway } from './support/gateway.js';
import { HookedStore } from './support/hooked-store.js';
import { poll, sendOk } from './support/http.js';
import { redisClient, sharedRedis, uniquePrefix } from './support/redis.js';
import { waitFor } from './support/wait.js';

const RETENTION = { maxLength: 1000, ttlSeconds: 3600, metaTtlSeconds: 86400 };
const retention = (stream: string) => (stream.startsWith('short:') ? { ...RETENTION, maxLength: 3 } : RETENTION);

interface Flavour {
  name: string;
  makeStore(): Promise<{ store: Store; dropStream?: (stream: string) => Promise<void>; redisUrl?: string }>;
}

const flavours: Flavour[] = [
  {
    name: 'memory',
    async makeStore() {
      let now = Date.now();
      const store = new MemoryStore(retention, () => now);
      // Moving the store's clock past the metadata TTL is what losing the stream looks like.
      return { store, dropStream: async () => void (now += RETENTION.metaTtlSeconds * 1000 + 1) };
    },
  },
  {
    name: 'redis',
    async makeStore() {
      const redis = await sharedRedis();
      const keyPrefix = uniquePrefix();
      const store = new RedisStore({ url: redis.url, keyPrefix, cluster: false, commandTimeoutMs: 2000, retention, tailCache: testConfig().redis.tailCache, log: createLogger('silent') });
      await store.connect();
      const keys = new RedisKeys(keyPrefix);
      return {
        store,
        redisUrl: redis.url,
        async dropStream(stream: string) {
          const admin = redisClient(redis.url);
          await admin.del(keys.meta(stream), keys.log(stream), keys.ids(stream));
          admin.disconnect();
        },
      };
    },
  },
];

for (const flavour of flavours) {
  describe(`long-poll (${flavour.name} store)`, function () {
    let gw: TestGateway;
    let hooked: HookedStore;
    let dropStream: ((stream: string) => Promise<void>) | undefined;
    let redisUrl: string | undefined;
    const key = () => gw.apiKey;

    beforeEach(async () => {
      const made = await flavour.makeStore();
      hooked = new HookedStore(made.store);
      dropStream = made.dropStream;
      redisUrl = made.redisUrl;
      gw = await startGateway({}, { store: hooked });
    });
    afterEach(async () => gw.shutdown());

    async function parkedPoll(params: Record<string, string | number | undefined>, count = 1) {
      const pending = poll(gw.url, key(), params);
      await waitFor(() => gw.longPolls.size >= count, 'the poll to park');
      return pending;
    }

    it('answers at once when messages exist after the cursor', async () => {
      const first = await poll(gw.url, key(), { streams: 'room:1', timeout: 0 });
      await sendOk(gw.url, key(), { stream: 'room:1', data: 'a' });
      const started = Date.now();
      const r = await poll(gw.url, key(), { streams: 'room:1', cursor: first.cursor, timeout: 30 });
      expect(Date.now() - started).to.be.below(5000);
      expect(r.messages.map((m) => m.data)).to.deep.equal(['a']);
    });

    it('parks a poll and answers it when a message is sent', async () => {
      const pending = poll(gw.url, key(), { streams: 'room:2', timeout: 30 });
      await waitFor(() => gw.longPolls.size === 1, 'the poll to park');
      const sent = await sendOk(gw.url, key(), { stream: 'room:2', data: { n: 1 }, id: 'm-1' });
      const r = await pending;
      expect(r.messages).to.have.length(1);
      expect(r.messages[0]).to.include({ stream: 'room:2', seq: sent.results[0].seq, id: 'm-1' });
      expect(r.messages[0]!.data).to.deep.equal({ n: 1 });
      await waitFor(() => gw.registry.size === 0 && gw.registry.streamCount === 0, 'the waiter to be released');
    });

    it('answers within limits.answerBytes: a parked poll gets a message larger than that alone, then the rest', async () => {
      const made = await flavour.makeStore();
      const small = await startGateway({ limits: { answerBytes: 1024 } }, { store: made.store });
      try {
        const first = await poll(small.url, key(), { streams: 'big:1', timeout: 0 });
        const pending = poll(small.url, key(), { streams: 'big:1', cursor: first.cursor, timeout: 30 });
        await waitFor(() => small.longPolls.size === 1, 'the poll to park');
        // 20 KB: more than a wake-up carries (WAKE_MESSAGES_MAX_BYTES), so the parked poll's read finds it.
        await sendOk(small.url, key(), { messages: [{ stream: 'big:1', data: 'x'.repeat(20_000) }, { stream: 'big:1', data: 'small' }] });
        const r = await pending;
        expect(r.messages.map((m) => m.seq)).to.deep.equal([1]);
        const rest = await poll(small.url, key(), { streams: 'big:1', cursor: r.cursor, timeout: 0 });
        expect(rest.messages.map((m) => m.data)).to.deep.equal(['small']);
      } finally {
        await small.shutdown();
      }
    });

    it('answers an empty 200 with the cursor unchanged when the hold times out', async () => {
      const first = await poll(gw.url, key(), { streams: 'room:3', timeout: 0 });
      const r = await poll(gw.url, key(), { streams: 'room:3', cursor: first.cursor, timeout: 0.2 });
      expect(r).to.deep.equal({ messages: [], cursor: first.cursor });
      expect(gw.registry.size).to.equal(0);
    });

    it('resumes from an old cursor: the missed messages once, in order, then parks', async () => {
      const start = await poll(gw.url, key(), { streams: 'room:4', timeout: 0 });
      for (let i = 1; i <= 5; i++) await sendOk(gw.url, key(), { stream: 'room:4', data: i });
      const r1 = await poll(gw.url, key(), { streams: 'room:4', cursor: start.cursor, limit: 2 });
      expect(r1.messages.map((m) => m.data)).to.deep.equal([1, 2]);
      const r2 = await poll(gw.url, key(), { streams: 'room:4', cursor: r1.cursor });
      expect(r2.messages.map((m) => m.seq)).to.deep.equal([3, 4, 5]);
      const again = await poll(gw.url, key(), { streams: 'room:4', cursor: r1.cursor });
      expect(again.messages.map((m) => m.seq)).to.deep.equal([3, 4, 5]);
      const r3 = await poll(gw.url, key(), { streams: 'room:4', cursor: r2.cursor, timeout: 0.1 });
      expect(r3.messages).to.deep.equal([]);
    });

    it('starts at the head without a cursor, or at the oldest retained message with since=earliest', async () => {
      await sendOk(gw.url, key(), { stream: 'room:5', data: 'old' });
      const now = await poll(gw.url, key(), { streams: 'room:5', timeout: 0 });
      expect(now.messages).to.deep.equal([]);
      const earliest = await poll(gw.url, key(), { streams: 'room:5', since: 'earliest', timeout: 0 });
      expect(earliest.messages.map((m) => m.data)).to.deep.equal(['old']);
      expect(earliest.gaps).to.equal(undefined);
    });

    it('delivers from seq 1 to a cursor taken before the stream existed', async () => {
      const before = await poll(gw.url, key(), { streams: 'fresh:1', timeout: 0 });
      await sendOk(gw.url, key(), { stream: 'fresh:1', data: 'first' });
      const r = await poll(gw.url, key(), { streams: 'fresh:1', cursor: before.cursor });
      expect(r.messages.map((m) => m.seq)).to.deep.equal([1]);
      expect(r.resets).to.equal(undefined);
    });

    it('reports a gap when the cursor is older than the retained log', async () => {
      await sendOk(gw.url, key(), { stream: 'short:1', data: 1 });
      const at1 = await poll(gw.url, key(), { streams: 'short:1', since: 'earliest', timeout: 0 });
      for (let i = 2; i <= 10; i++) await sendOk(gw.url, key(), { stream: 'short:1', data: i });
      const r = await poll(gw.url, key(), { streams: 'short:1', cursor: at1.cursor });
      expect(r.gaps).to.deep.equal([{ stream: 'short:1', from: 2, to: 7 }]);
      expect(r.messages.map((m) => m.seq)).to.deep.equal([8, 9, 10]);
    });

    it('reports a reset when the stream log was lost and recreated', async () => {
      await sendOk(gw.url, key(), { stream: 'room:6', data: 'a' });
      const at1 = await poll(gw.url, key(), { streams: 'room:6', since: 'earliest', timeout: 0 });
      await dropStream!('room:6');
      await sendOk(gw.url, key(), { stream: 'room:6', data: 'b' });
      const r = await poll(gw.url, key(), { streams: 'room:6', cursor: at1.cursor });
      expect(r.resets).to.deep.equal(['room:6']);
      expect(r.messages.map((m) => m.data)).to.deep.equal(['b']);
    });

    it('polls several streams: per-stream order, one cursor for all', async () => {
      const start = await poll(gw.url, key(), { streams: 'a:1,b:1', timeout: 0 });
      await sendOk(gw.url, key(), { messages: [{ stream: 'a:1', data: 1 }, { stream: 'b:1', data: 2 }, { stream: 'a:1', data: 3 }] });
      const r = await poll(gw.url, key(), { streams: 'a:1,b:1', cursor: start.cursor });
      expect(r.messages.filter((m) => m.stream === 'a:1').map((m) => m.data)).to.deep.equal([1, 3]);
      expect(r.messages.filter((m) => m.stream === 'b:1').map((m) => m.data)).to.deep.equal([2]);
      const next = await poll(gw.url, key(), { streams: 'b:1', cursor: r.cursor, timeout: 0 });
      expect(next.messages).to.deep.equal([]);
    });

    it('keeps one parked poll per (subject, conn): a newer poll answers the older at once', async () => {
      const first = await poll(gw.url, key(), { streams: 'room:7', timeout: 0 });
      const older = poll(gw.url, key(), { streams: 'room:7', cursor: first.cursor, conn: 'tab1', timeout: 30 });
      await waitFor(() => gw.longPolls.size === 1, 'the first poll to park');
      const newer = poll(gw.url, key(), { streams: 'room:7', cursor: first.cursor, conn: 'tab1', timeout: 30 });
      expect(await older).to.deep.equal({ messages: [], cursor: first.cursor });
      await waitFor(() => gw.longPolls.size === 1, 'the newer poll to park');
      await sendOk(gw.url, key(), { stream: 'room:7', data: 'x' });
      expect((await newer).messages.map((m) => m.data)).to.deep.equal(['x']);
    });

    it('does not let another conn id supersede', async () => {
      const a = poll(gw.url, key(), { streams: 'room:8', conn: 'one', timeout: 30 });
      const b = poll(gw.url, key(), { streams: 'room:8', conn: 'two', timeout: 30 });
      await waitFor(() => gw.longPolls.size === 2, 'both polls to park');
      await sendOk(gw.url, key(), { stream: 'room:8', data: 'y' });
      expect((await a).messages).to.have.length(1);
      expect((await b).messages).to.have.length(1);
    });

    it('releases the waiter, its timer and its subscription when the client goes away', async () => {
      const abort = new AbortController();
      const pending = poll(gw.url, key(), { streams: 'room:9,room:10', timeout: 50 }, abort.signal).catch((e: Error) => e);
      await waitFor(() => gw.longPolls.size === 1 && gw.registry.streamCount === 2, 'the poll to park');
      abort.abort();
      expect(await pending).to.be.instanceOf(Error);
      await waitFor(() => gw.longPolls.size === 0 && gw.registry.size === 0 && gw.registry.streamCount === 0, 'the waiter to be released');
    });

    // Memory only: with Redis it depends on whether the tail cache holds the stream yet.
    (flavour.name === 'memory' ? it : () => {})('reads nothing for a caught-up poll: the head the store knows answers when it arrives and once subscribed', async () => {
      const start = await poll(gw.url, key(), { streams: 'head:1', timeout: 0 });
      hooked.reads = 0;
      hooked.headChecks = 0;
      const pending = poll(gw.url, key(), { streams: 'head:1', cursor: start.cursor, timeout: 30 });
      await waitFor(() => hooked.headChecks === 2, 'the checks on arrival and after subscribing');
      expect(hooked.reads).to.equal(0);
      await sendOk(gw.url, key(), { stream: 'head:1', data: 'x' });
      expect((await pending).messages.map((m) => m.data)).to.deep.equal(['x']);
    });

    it('never loses a wake-up: a message appended between the first read and parking still wakes the poll', async () => {
      const start = await poll(gw.url, key(), { streams: 'race:1', timeout: 0 });
      // Force the interleaving: the poll's first read takes its snapshot, then (before the poll can
      // park and subscribe) a message is appended and its wake-up published to nobody. Only the
      // re-read after subscribing can find it; without it the poll would hold for 30 s.
      const inner = hooked.inner;
      const realRead = inner.read.bind(inner);
      // A store that cannot tell the head without I/O (the Redis store before its tail cache
      // knows a stream): the poll reads before it parks.
      const knownHead = hooked.knownHead;
      hooked.knownHead = undefined;
      let raced = false;
      inner.read = async (stream, after, limit) => {
        const snapshot = await realRead(stream, after, limit);
        if (!raced && stream === 'race:1') {
          raced = true;
          expect(gw.registry.streamCount).to.equal(0);
          await sendOk(gw.url, key(), { stream: 'race:1', data: 'raced' });
        }
        return snapshot;
      };
      const r = await poll(gw.url, key(), { streams: 'race:1', cursor: start.cursor, timeout: 30 }).finally(() => (hooked.knownHead = knownHead));
      expect(raced).to.equal(true);
      expect(r.messages.map((m) => m.data)).to.deep.equal(['raced']);
    });

    it('answers every parked poll of a stream from one store read', async () => {
      const start = await poll(gw.url, key(), { streams: 'fan:1', timeout: 0 });
      hooked.reads = 0;
      hooked.headChecks = 0;
      const polls = Array.from({ length: 20 }, () => poll(gw.url, key(), { streams: 'fan:1', cursor: start.cursor, timeout: 30 }));
      await waitFor(() => gw.longPolls.size === 20, 'all polls to park');
      // Each poll checks the head the store knows (both stores here have knownHead) when it arrives
      // and again once subscribed, and reads only when that cannot tell.
      await waitFor(() => hooked.headChecks === 40, 'the checks on arrival and after subscribing');
      const before = hooked.reads;
      await sendOk(gw.url, key(), { stream: 'fan:1', data: 'all' });
      const results = await Promise.all(polls);
      for (const r of results) expect(r.messages.map((m) => m.data)).to.deep.equal(['all']);
      expect(hooked.reads - before).to.equal(1);
    });

    it('answers parked polls at the head from the messages the wake-up carries, with no store read', async () => {
      await sendOk(gw.url, key(), { stream: 'fan:2', data: 'first' });
      const start = await poll(gw.url, key(), { streams: 'fan:2', since: 'earliest', timeout: 0 });
      hooked.reads = 0;
      hooked.headChecks = 0;
      const polls = Array.from({ length: 5 }, () => poll(gw.url, key(), { streams: 'fan:2', cursor: start.cursor, timeout: 30 }));
      await waitFor(() => gw.longPolls.size === 5, 'all polls to park');
      await waitFor(() => hooked.headChecks === 10, 'the checks on arrival and after subscribing');
      const before = hooked.reads;
      await sendOk(gw.url, key(), { messages: [{ stream: 'fan:2', data: 'a' }, { stream: 'fan:2', data: 'b' }] });
      const results = await Promise.all(polls);
      for (const r of results) expect(r.messages.map((m) => [m.seq, m.data])).to.deep.equal([[2, 'a'], [3, 'b']]);
      expect(hooked.reads - before).to.equal(0);
      // The cursor they got continues exactly after the carried messages.
      await sendOk(gw.url, key(), { stream: 'fan:2', data: 'c' });
      const next = await poll(gw.url, key(), { streams: 'fan:2', cursor: results[0]!.cursor, timeout: 0 });
      expect(next.messages.map((m) => m.data)).to.deep.equal(['c']);
    });

    // Redis only: the memory store has no connection to lose.
    (flavour.name === 'redis' ? it : () => {})('wakes every parked poll to re-read the log when the pub/sub connection drops', async () => {
      const start = await poll(gw.url, key(), { streams: 'kill:1', timeout: 0 });
      const pending = poll(gw.url, key(), { streams: 'kill:1', cursor: start.cursor, timeout: 30 });
      await waitFor(() => gw.longPolls.size === 1, 'the poll to park');
      await waitFor(() => hooked.reads >= 3, 'the re-read after subscribing');
      // A message appended while the subscriber is away publishes to nobody: only the resync finds it.
      const admin = redisClient(redisUrl!);
      try {
        await admin.client('KILL', 'TYPE', 'pubsub');
        const channel = new RedisKeys((hooked.inner as RedisStore)['options'].keyPrefix).wakeChannel('kill:1');
        const [, subscribers] = (await admin.pubsub('NUMSUB', channel)) as [string, number];
        expect(subscribers, 'the subscriber should still be reconnecting').to.equal(0);
        await sendOk(gw.url, key(), { stream: 'kill:1', data: 'during-gap' });
      } finally {
        admin.disconnect();
      }
      const r = await pending;
      expect(r.messages.map((m) => m.data)).to.deep.equal(['during-gap']);
    });
  });
}
