import { expect } from 'chai';
import type { Position } from '../../lib/cursor.js';
import type { Batch } from '../../lib/delivery.js';
import { createLogger } from '../../lib/log.js';
import { MemoryStore } from '../../lib/store/memory-store.js';
import { SERVER_SENDER, messageBytes, messageTail, type StreamRead } from '../../lib/store/store.js';
import { Feed, type FeedSink } from '../../lib/transports/feed.js';
import { WaiterRegistry } from '../../lib/waiters.js';
import { until } from '../support/clients.js';

const log = createLogger('silent');
const rule = { maxLength: 1000, ttlSeconds: 3600, metaTtlSeconds: 86_400 };

/** Records batches; `flush` controls when writes count as flushed. */
class Sink implements FeedSink {
  batches: Batch[] = [];
  buffered = 0;
  overflowed = false;
  write(batch: Batch): Promise<void> {
    this.batches.push(batch);
    return Promise.resolve();
  }
  bufferedBytes(): number {
    return this.buffered;
  }
  overflow(): void {
    this.overflowed = true;
  }
  /** Resolves once `n` batches were written in total. */
  async count(n: number): Promise<void> {
    while (this.batches.length < n) await new Promise<void>((r) => setImmediate(r));
  }
  seqs(): number[] {
    return this.batches.flatMap((b) => b.deliveries.flatMap((d) => d.messages.map((m) => JSON.parse(m).seq as number)));
  }
}

describe('Feed', () => {
  let store: MemoryStore;
  let registry: WaiterRegistry;
  let sink: Sink;
  let feed: Feed;

  beforeEach(() => {
    store = new MemoryStore(() => rule);
    registry = new WaiterRegistry(store, log);
    sink = new Sink();
    feed = new Feed(sink, { store, registry, log, limit: 10, maxBufferedBytes: 1000 });
  });

  afterEach(async () => {
    feed.close();
    await store.close();
  });

  const append = (stream: string, n: number) =>
    store.append(stream, Array.from({ length: n }, (_, i) => ({ id: `${stream}-${Date.now()}-${i}-${Math.random()}`, sender: SERVER_SENDER, tail: messageTail('x', 1, String(i)) })));
  const start = (stream: string, pos: Position = { epoch: '', seq: 0 }) => new Map([[stream, pos]]);

  it('delivers what is appended after add(), in order, and keeps one waiter per stream registered', async () => {
    await feed.add(start('a'));
    expect(registry.size).to.equal(1);
    await append('a', 3);
    await append('a', 2);
    while (sink.seqs().length < 5) await new Promise<void>((r) => setImmediate(r));
    expect(sink.seqs()).to.deep.equal([1, 2, 3, 4, 5]);
  });

  it('writes a wake-up that carries the next message at once, so the registry needs no second read', async () => {
    await append('w', 1);
    await feed.add(start('w'));
    await sink.count(1);
    const reads: number[] = [];
    const read = store.read.bind(store);
    store.read = (stream: string, after: number, limit: number) => {
      reads.push(after);
      return read(stream, after, limit);
    };
    // The store's wake-up (it carries the message) runs before this await returns.
    await append('w', 1);
    expect(sink.batches).to.have.length(2);
    expect(feed.positions.get('w')?.seq).to.equal(2);
    await new Promise<void>((r) => setImmediate(r));
    expect(reads).to.deep.equal([]);
    expect(sink.seqs()).to.deep.equal([1, 2]);
  });

  it('ignores a snapshot older than what it already delivered instead of reporting a reset', async () => {
    await append('s', 1);
    const stale: StreamRead = await store.read('s', 0, 10);
    await feed.add(start('s'));
    await append('s', 2);
    while (sink.seqs().length < 3) await new Promise<void>((r) => setImmediate(r));
    const before = sink.batches.length;
    feed.wake('s', stale);
    feed.wake('s', { ...stale, epoch: 'AAAAAAAA', lastSeq: 1, firstSeq: 1, after: 0 });
    await append('s', 1);
    await sink.count(before + 1);
    expect(sink.batches.slice(before).every((b) => b.deliveries.every((d) => !d.reset && !d.gap))).to.equal(true);
    expect(sink.seqs()).to.deep.equal([1, 2, 3, 4]);
  });

  it('closes instead of writing when earlier writes are still unread above maxBufferedBytes', async () => {
    await feed.add(start('o'));
    sink.buffered = 5000;
    await append('o', 1);
    while (!sink.overflowed) await new Promise<void>((r) => setImmediate(r));
    expect(sink.batches).to.have.length(0);
    expect(registry.size).to.equal(0);
  });

  describe('byte budget (limits.answerBytes)', () => {
    let small: Feed;
    let smallRegistry: WaiterRegistry;
    let ids = 0;
    const big = (stream: string, n: number, size: number) =>
      store.append(stream, Array.from({ length: n }, () => ({ id: `b${++ids}`, sender: SERVER_SENDER, tail: messageTail(`b${ids}`, 1, JSON.stringify('x'.repeat(size))) })));
    const bytesOf = (b: Batch) => b.deliveries.reduce((n, d) => n + d.messages.reduce((k, m) => k + messageBytes(m), 0), 0);
    const bySeq = (stream: string) => sink.batches.flatMap((b) => b.deliveries.filter((d) => d.stream === stream).flatMap((d) => d.messages.map((m) => JSON.parse(m).seq as number)));

    beforeEach(() => {
      smallRegistry = new WaiterRegistry(store, log, { answerBytes: 3000 });
      small = new Feed(sink, { store, registry: smallRegistry, log, limit: 100, maxBufferedBytes: 1 << 20 });
    });
    afterEach(() => small.close());

    it('writes a backlog of several streams in batches that share one byte budget, every message once and in order', async () => {
      await big('p', 10, 900);
      await big('q', 10, 900);
      await small.add(new Map([['p', { epoch: '', seq: 0 }], ['q', { epoch: '', seq: 0 }]]));
      await until(() => bySeq('p').length + bySeq('q').length >= 20);
      const ten = Array.from({ length: 10 }, (_, i) => i + 1);
      expect([bySeq('p'), bySeq('q')]).to.deep.equal([ten, ten]);
      for (const b of sink.batches) expect(bytesOf(b)).to.be.at.most(3000);
      // Both streams in the first batch: neither waits for the other's backlog.
      expect(sink.batches[0]!.deliveries.map((d) => d.messages.length > 0)).to.deep.equal([true, true]);
    });

    it('sends a message larger than the budget alone, then goes on', async () => {
      await big('r', 1, 10);
      await big('r', 1, 5000);
      await big('r', 2, 10);
      await small.add(start('r'));
      await until(() => bySeq('r').length >= 4);
      expect(bySeq('r')).to.deep.equal([1, 2, 3, 4]);
      expect(sink.batches.map((b) => b.count)).to.deep.equal([1, 1, 2]);
    });

    it('cuts a wake-up that carries more than the budget and writes the rest in the next batch', async () => {
      await big('t', 1, 10);
      await small.add(start('t'));
      await until(() => bySeq('t').length >= 1);
      // Six messages of 900 bytes travel in one wake-up (under WAKE_MESSAGES_MAX_BYTES) to a position in its epoch.
      await big('t', 6, 900);
      await until(() => bySeq('t').length >= 7);
      expect(bySeq('t')).to.deep.equal([1, 2, 3, 4, 5, 6, 7]);
      for (const b of sink.batches) expect(bytesOf(b)).to.be.at.most(3000);
    });
  });

  it('unregisters every stream on close and on remove()', async () => {
    await feed.add(new Map([['x', { epoch: '', seq: 0 }], ['y', { epoch: '', seq: 0 }]]));
    expect(registry.size).to.equal(2);
    feed.remove(['x']);
    expect(registry.size).to.equal(1);
    expect([...feed.positions.keys()]).to.deep.equal(['y']);
    feed.close();
    expect(registry.size).to.equal(0);
  });
});
