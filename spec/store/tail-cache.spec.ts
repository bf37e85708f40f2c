/**
 * The pure tail cache: seeding, extending, what drops it, retention, and a model check that every
 * answer it gives equals a read of the log.
 */
import { expect } from 'chai';
import { TailCache, expiryMargin, type TailCacheOptions } from '../../lib/store/tail-cache.js';
import { HEAD_ONLY, type StreamRead } from '../../lib/store/store.js';

const S = 's';
const m = (seq: number, epoch = 'E') => `${epoch}#${seq}`;
const range = (from: number, to: number, epoch = 'E') => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => m(from + i, epoch));

interface Clock {
  now: number;
}

function makeCache(over: Partial<TailCacheOptions> = {}, rule = { maxLength: 100, ttlMs: 60_000 }): { cache: TailCache; clock: Clock } {
  const clock = { now: 1000 };
  const cache = new TailCache({ maxMessages: 64, maxBytes: 64 * 1024, totalBytes: 1 << 20, retention: () => rule, now: () => clock.now, ...over });
  return { cache, clock };
}

function storeRead(epoch: string, lastSeq: number, firstSeq: number, after: number, limit: number): StreamRead {
  const from = Math.max(after + 1, firstSeq);
  const to = limit > 0 ? Math.min(lastSeq, from + limit - 1) : from - 1;
  return { stream: S, epoch, lastSeq, firstSeq, after: Math.max(after, firstSeq - 1), messages: range(from, to, epoch) };
}

/** Opens the stream and seeds it from a read of (epoch, lastSeq, firstSeq) after `after`. */
function seeded(cache: TailCache, lastSeq: number, firstSeq = 1, after = 0, limit = 100, lifeMs = 60_000): void {
  cache.open(S);
  const ticket = cache.ticket(S)!;
  cache.seed(S, ticket, storeRead('E', lastSeq, firstSeq, after, limit), lifeMs);
}

describe('TailCache', () => {
  describe('head', () => {
    it('is the head exactly when a read could be answered from memory', () => {
      const { cache, clock } = makeCache();
      expect(cache.head(S), 'not open').to.equal(undefined);
      cache.open(S);
      expect(cache.head(S), 'open, not seeded').to.equal(undefined);
      seeded(cache, 5);
      expect(cache.head(S)).to.deep.equal({ epoch: 'E', lastSeq: 5 });
      cache.wake(S, { epoch: 'E', lastSeq: 6, messages: [m(6)] });
      expect(cache.head(S)).to.deep.equal({ epoch: 'E', lastSeq: 6 });
      cache.appended(S, 'E', 7);
      expect(cache.head(S), 'our own append not seen yet').to.equal(undefined);
      cache.wake(S, { epoch: 'E', lastSeq: 7, messages: [m(7)] });
      expect(cache.head(S)).to.deep.equal({ epoch: 'E', lastSeq: 7 });
      clock.now += 60_000;
      expect(cache.head(S), 'expired').to.equal(undefined);
      seeded(cache, 7);
      cache.clear();
      expect(cache.head(S), 'connection lost').to.equal(undefined);
    });
  });

  describe('seed', () => {
    it('answers reads at and near the head exactly as the store would', () => {
      const { cache } = makeCache();
      seeded(cache, 5, 1, 2);
      expect(cache.read(S, 5, 10)).to.deep.equal(storeRead('E', 5, 1, 5, 10));
      expect(cache.read(S, 3, 10)).to.deep.equal(storeRead('E', 5, 1, 3, 10));
      expect(cache.read(S, 2, 2)).to.deep.equal(storeRead('E', 5, 1, 2, 2));
      expect(cache.read(S, HEAD_ONLY, 0)).to.deep.equal(storeRead('E', 5, 1, HEAD_ONLY, 0));
      expect(cache.read(S, 0, 0)).to.deep.equal(storeRead('E', 5, 1, 0, 0));
      expect(cache.read(S, 9, 10), 'a position ahead of the log').to.deep.equal(storeRead('E', 5, 1, 9, 10));
      expect(cache.read(S, 1, 10), 'before what it holds').to.equal(undefined);
      expect(cache.hits).to.equal(6);
      expect(cache.misses).to.equal(1);
    });

    it('keeps only the head when the read stopped short of it (limit)', () => {
      const { cache } = makeCache();
      seeded(cache, 9, 1, 0, 3);
      expect(cache.read(S, 9, 10)).to.deep.equal(storeRead('E', 9, 1, 9, 10));
      expect(cache.read(S, HEAD_ONLY, 0)).to.deep.equal(storeRead('E', 9, 1, HEAD_ONLY, 0));
      expect(cache.read(S, 8, 10)).to.equal(undefined);
    });

    it('reports the true firstSeq, so an old position still reads as a gap', () => {
      const { cache } = makeCache();
      seeded(cache, 20, 11, 15);
      expect(cache.read(S, 3, 0)).to.deep.equal(storeRead('E', 20, 11, 3, 0));
      expect(cache.read(S, 17, 2)).to.deep.equal(storeRead('E', 20, 11, 17, 2));
    });

    it('does not seed from a read when a wake-up arrived between its ticket and its reply', () => {
      const { cache } = makeCache();
      cache.open(S);
      const ticket = cache.ticket(S)!;
      // Appended after the read ran; its wake-up beat the read's reply.
      cache.wake(S, { epoch: 'E', lastSeq: 6, messages: [m(6)] });
      cache.seed(S, ticket, storeRead('E', 5, 1, 0, 100), 60_000);
      expect(cache.read(S, 5, 10)).to.equal(undefined);
    });

    it('seeds despite wake-ups in flight that the read already includes', () => {
      const { cache } = makeCache();
      cache.open(S);
      const ticket = cache.ticket(S)!;
      cache.wake(S, { epoch: 'E', lastSeq: 4, messages: [m(4)] });
      cache.wake(S, { epoch: 'E', lastSeq: 5 });
      cache.seed(S, ticket, storeRead('E', 5, 1, 0, 100), 60_000);
      expect(cache.read(S, 5, 10)).to.deep.equal(storeRead('E', 5, 1, 5, 10));
    });

    it('does not seed when a wake-up in flight was of another epoch (a new log restarts at seq 1)', () => {
      const { cache } = makeCache();
      cache.open(S);
      const ticket = cache.ticket(S)!;
      cache.wake(S, { epoch: 'F', lastSeq: 1, messages: [m(1, 'F')] });
      cache.seed(S, ticket, storeRead('E', 5, 1, 0, 100), 60_000);
      expect(cache.read(S, 5, 10)).to.equal(undefined);
    });

    it('does not seed unless the subscription is confirmed on the current connection', () => {
      const { cache } = makeCache();
      expect(cache.ticket(S)).to.equal(undefined);
      cache.open(S);
      const ticket = cache.ticket(S)!;
      cache.clear();
      cache.open(S);
      cache.seed(S, ticket, storeRead('E', 5, 1, 0, 100), 60_000);
      expect(cache.read(S, 5, 10)).to.equal(undefined);
    });

    it('does not cache a stream without a log', () => {
      const { cache } = makeCache();
      cache.open(S);
      cache.seed(S, cache.ticket(S)!, { stream: S, epoch: '', lastSeq: 0, firstSeq: 1, after: 0, messages: [] }, -1);
      expect(cache.read(S, 0, 10)).to.equal(undefined);
    });
  });

  describe('wake', () => {
    it('extends with carried messages that continue the entry, skipping any overlap', () => {
      const { cache } = makeCache();
      seeded(cache, 5);
      cache.wake(S, { epoch: 'E', lastSeq: 7, messages: [m(6), m(7)] });
      cache.wake(S, { epoch: 'E', lastSeq: 9, messages: [m(7), m(8), m(9)] });
      expect(cache.read(S, 5, 10)).to.deep.equal(storeRead('E', 9, 1, 5, 10));
      expect(cache.read(S, 0, 100)).to.deep.equal(storeRead('E', 9, 1, 0, 100));
    });

    it('ignores a stale wake-up the entry already includes', () => {
      const { cache } = makeCache();
      seeded(cache, 5);
      cache.wake(S, { epoch: 'E', lastSeq: 4, messages: [m(4)] });
      cache.wake(S, { epoch: 'E', lastSeq: 5 });
      expect(cache.read(S, 3, 10)).to.deep.equal(storeRead('E', 5, 1, 3, 10));
    });

    it('drops the entry on a gap, a bare wake-up that moves the head, or another epoch', () => {
      for (const hint of [
        { epoch: 'E', lastSeq: 8, messages: [m(7), m(8)] },
        { epoch: 'E', lastSeq: 6 },
        { epoch: 'F', lastSeq: 6, messages: [m(6, 'F')] },
      ]) {
        const { cache } = makeCache();
        seeded(cache, 5);
        cache.wake(S, hint);
        expect(cache.read(S, 5, 10), JSON.stringify(hint)).to.equal(undefined);
      }
    });

    it('does not seed from the wake-up of a fresh log (seqs 1..n): it may be older than an append already acknowledged', () => {
      const { cache } = makeCache();
      cache.open(S);
      cache.wake(S, { epoch: 'F', lastSeq: 2, messages: [m(1, 'F'), m(2, 'F')] });
      expect(cache.read(S, 0, 10)).to.equal(undefined);
    });

    it('moves firstSeq as LTRIM trims to maxLength', () => {
      const { cache } = makeCache({}, { maxLength: 3, ttlMs: 60_000 });
      seeded(cache, 3);
      cache.wake(S, { epoch: 'E', lastSeq: 5, messages: [m(4), m(5)] });
      expect(cache.read(S, 1, 10)).to.deep.equal(storeRead('E', 5, 3, 1, 10));
      expect(cache.read(S, 0, 0)).to.deep.equal(storeRead('E', 5, 3, 0, 0));
    });

    it('keeps at most maxMessages and maxBytes of the newest messages, and nothing beyond totalBytes', () => {
      const { cache } = makeCache({ maxMessages: 3 });
      seeded(cache, 10);
      expect(cache.read(S, 7, 10)).to.deep.equal(storeRead('E', 10, 1, 7, 10));
      expect(cache.read(S, 6, 10)).to.equal(undefined);
      const bytes = makeCache({ maxBytes: m(10).length * 2 }).cache;
      seeded(bytes, 10);
      expect(bytes.read(S, 8, 10)).to.deep.equal(storeRead('E', 10, 1, 8, 10));
      expect(bytes.read(S, 7, 10)).to.equal(undefined);
      const total = makeCache({ totalBytes: 10 }).cache;
      seeded(total, 10);
      expect(total.heldChars).to.equal(0);
      expect(total.read(S, 10, 10)).to.deep.equal(storeRead('E', 10, 1, 10, 10));
      expect(total.read(S, 9, 10)).to.equal(undefined);
    });
  });

  describe('retention by TTL', () => {
    it('stops answering from a read once its keys may have expired, with a margin', () => {
      const { cache, clock } = makeCache();
      seeded(cache, 5, 1, 0, 100, 20_000);
      clock.now += 20_000 - expiryMargin(60_000) - 1;
      expect(cache.read(S, 5, 1)).to.not.equal(undefined);
      clock.now += 1;
      expect(cache.read(S, 5, 1)).to.equal(undefined);
    });

    it('renews from each wake-up for the TTL minus the margin', () => {
      const { cache, clock } = makeCache({}, { maxLength: 100, ttlMs: 2000 });
      seeded(cache, 5, 1, 0, 100, 2000);
      clock.now += 500;
      cache.wake(S, { epoch: 'E', lastSeq: 6, messages: [m(6)] });
      clock.now += 2000 - expiryMargin(2000) - 1;
      expect(cache.read(S, 6, 1)).to.not.equal(undefined);
      clock.now += 1;
      // The log may have expired before this append and restarted empty: the entry cannot follow it.
      cache.wake(S, { epoch: 'E', lastSeq: 7, messages: [m(7)] });
      expect(cache.read(S, 7, 1)).to.equal(undefined);
    });

    it('never caches a TTL shorter than the margin', () => {
      const { cache } = makeCache({}, { maxLength: 100, ttlMs: 1000 });
      seeded(cache, 5, 1, 0, 100, 1000);
      expect(cache.read(S, 5, 1)).to.equal(undefined);
    });
  });

  describe('appended (read-your-writes)', () => {
    it('misses until the wake-up of this process\'s own append arrived', () => {
      const { cache } = makeCache();
      seeded(cache, 5);
      cache.appended(S, 'E', 6);
      expect(cache.read(S, 5, 10)).to.equal(undefined);
      cache.wake(S, { epoch: 'E', lastSeq: 6, messages: [m(6)] });
      expect(cache.read(S, 5, 10)).to.deep.equal(storeRead('E', 6, 1, 5, 10));
    });

    it('lets a read sent after the append clear the floor', () => {
      const { cache } = makeCache();
      seeded(cache, 5);
      cache.appended(S, 'E', 6);
      cache.seed(S, cache.ticket(S)!, storeRead('E', 6, 1, 0, 100), 60_000);
      expect(cache.read(S, 6, 10)).to.deep.equal(storeRead('E', 6, 1, 6, 10));
    });

    it('drops an entry of another epoch', () => {
      const { cache } = makeCache();
      seeded(cache, 5);
      cache.appended(S, 'F', 1);
      expect(cache.read(S, 5, 10)).to.equal(undefined);
    });
  });

  it('forgets entries on clear(), close() and forget()', () => {
    for (const how of ['clear', 'close', 'forget'] as const) {
      const { cache } = makeCache();
      seeded(cache, 5);
      if (how === 'close') cache.close(S);
      else cache[how]();
      expect(cache.read(S, 5, 1), how).to.equal(undefined);
      expect(cache.heldChars).to.equal(0);
    }
  });
});
