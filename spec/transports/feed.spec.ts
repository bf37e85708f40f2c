import { expect } from 'chai';
import type { Position } from '../../lib/cursor.js';
import type { Batch } from '../../lib/delivery.js';
import { createLogger } from '../../lib/log.js';
import { MemoryStore } from '../../lib/store/memory-store.js';
import { messageTail, type StreamRead } from '../../lib/store/store.js';
import { Feed, type FeedSink } from '../../lib/transports/feed.js';
import { WaiterRegistry } from '../../lib/waiters.js';

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
    store.append(stream, Array.from({ length: n }, (_, i) => ({ id: `${stream}-${Date.now()}-${i}-${Math.random()}`, tail: messageTail('x', 1, String(i)) })));
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
