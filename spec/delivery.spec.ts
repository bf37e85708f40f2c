import { expect } from 'chai';
import type { Position } from '../lib/cursor.js';
import { makeBatch, readBatch, readStreams, resolve, type StreamDelivery } from '../lib/delivery.js';
import { MemoryStore } from '../lib/store/memory-store.js';
import { SERVER_SENDER, messageBytes, messageTail, type StreamRead } from '../lib/store/store.js';

const E = 'AAAAAAAB';
const F = 'AAAAAAAC';

/** A snapshot of stream "s" holding seqs first..last, with messages after `after`. */
function snapshot(first: number, last: number, after = first - 1, epoch = E): StreamRead {
  const messages: string[] = [];
  for (let seq = Math.max(after, first - 1) + 1; seq <= last; seq++) messages.push(`{"seq":${seq}}`);
  return { stream: 's', epoch, firstSeq: first, lastSeq: last, after: Math.max(after, first - 1), messages };
}

function delivered(r: ReturnType<typeof resolve>): StreamDelivery {
  if ('reread' in r) throw new Error(`expected a delivery, got reread ${r.reread}`);
  return r;
}

describe('delivery.resolve', () => {
  it('hands out the messages after the position and moves it past them', () => {
    const d = delivered(resolve({ epoch: E, seq: 2 }, snapshot(1, 5), 100));
    expect(d.messages).to.deep.equal(['{"seq":3}', '{"seq":4}', '{"seq":5}']);
    expect(d.position).to.deep.equal({ epoch: E, seq: 5 });
    expect(d.gap).to.equal(undefined);
    expect(d.reset).to.equal(undefined);
  });

  it('respects the limit and moves the position only past what it hands out', () => {
    const d = delivered(resolve({ epoch: E, seq: 0 }, snapshot(1, 5), 2));
    expect(d.messages).to.have.length(2);
    expect(d.position.seq).to.equal(2);
  });

  it('reports a gap when the position is older than the oldest retained message', () => {
    const d = delivered(resolve({ epoch: E, seq: 3 }, snapshot(10, 12), 100));
    expect(d.gap).to.deep.equal({ stream: 's', from: 4, to: 9 });
    expect(d.messages).to.have.length(3);
    expect(d.position.seq).to.equal(12);
  });

  it('reports a gap up to the head when every message expired', () => {
    const d = delivered(resolve({ epoch: E, seq: 3 }, snapshot(8, 7), 100));
    expect(d.gap).to.deep.equal({ stream: 's', from: 4, to: 7 });
    expect(d.position).to.deep.equal({ epoch: E, seq: 7 });
  });

  it('reports a reset when the epoch changed, then serves the new log from its start', () => {
    const d = delivered(resolve({ epoch: E, seq: 40 }, snapshot(1, 2, 0, F), 100));
    expect(d.reset).to.equal(true);
    expect(d.gap).to.equal(undefined);
    expect(d.messages).to.have.length(2);
    expect(d.position).to.deep.equal({ epoch: F, seq: 2 });
  });

  it('reports a reset at the head when the client is ahead of the log (lost writes)', () => {
    const d = delivered(resolve({ epoch: E, seq: 9 }, snapshot(1, 5, 5), 100));
    expect(d.reset).to.equal(true);
    expect(d.messages).to.deep.equal([]);
    expect(d.position).to.deep.equal({ epoch: E, seq: 5 });
  });

  it('lets a seq-0 position match whatever epoch the stream gets', () => {
    const d = delivered(resolve({ epoch: '', seq: 0 }, snapshot(1, 2, 0, F), 100));
    expect(d.reset).to.equal(undefined);
    expect(d.messages).to.have.length(2);
  });

  it('reports a reset when a log the client read from is gone entirely', () => {
    const d = delivered(resolve({ epoch: E, seq: 3 }, { stream: 's', epoch: '', lastSeq: 0, firstSeq: 1, after: 3, messages: [] }, 100));
    expect(d.reset).to.equal(true);
    expect(d.position).to.deep.equal({ epoch: '', seq: 0 });
  });

  it('says nothing for a stream that never had a log', () => {
    const d = delivered(resolve({ epoch: '', seq: 0 }, { stream: 's', epoch: '', lastSeq: 0, firstSeq: 1, after: 0, messages: [] }, 100));
    expect(d.messages).to.deep.equal([]);
    expect(d.reset).to.equal(undefined);
  });

  it('asks for a re-read when the snapshot starts after the position', () => {
    expect(resolve({ epoch: E, seq: 2 }, snapshot(1, 9, 5), 100)).to.deep.equal({ reread: 2 });
  });

  it('asks for a re-read when the snapshot was cut short by its own limit', () => {
    const cut = { ...snapshot(1, 9, 0), messages: ['{"seq":1}', '{"seq":2}'] };
    expect(resolve({ epoch: E, seq: 4 }, cut, 100)).to.deep.equal({ reread: 4 });
  });
});

describe('delivery.readStreams', () => {
  const rule = { maxLength: 1000, ttlSeconds: 3600, metaTtlSeconds: 86_400 };
  let store: MemoryStore;
  let readBytes: number;
  const at0 = (...streams: string[]) => new Map<string, Position>(streams.map((s) => [s, { epoch: '', seq: 0 }]));
  const fill = (stream: string, n: number, size: number) =>
    store.append(stream, Array.from({ length: n }, (_, i) => ({ id: `${stream}-${i}`, sender: SERVER_SENDER, tail: messageTail(`${stream}-${i}`, 1, JSON.stringify('x'.repeat(size))) })));
  const bytesOf = (ds: StreamDelivery[]) => ds.reduce((n, d) => n + d.messages.reduce((k, m) => k + messageBytes(m), 0), 0);

  beforeEach(() => {
    store = new MemoryStore(() => rule);
    readBytes = 0;
    const read = store.read.bind(store);
    store.read = async (stream, after, limit, maxBytes) => {
      const r = await read(stream, after, limit, maxBytes);
      readBytes += r.messages.reduce((n, m) => n + messageBytes(m), 0);
      return r;
    };
  });
  afterEach(() => store.close());

  it('reads one budget for a poll of many full streams, not one per stream (issue 23)', async () => {
    for (const s of ['a', 'b', 'c', 'd', 'e']) await fill(s, 200, 1000);
    const budget = { limit: 1000, bytes: 50_000 };
    const ds = await readStreams(store, at0('a', 'b', 'c', 'd', 'e'), budget);
    const answered = bytesOf(ds);
    expect(answered).to.be.at.most(50_000).and.above(45_000);
    // Every byte read is answered: the amplification is exactly 1.
    expect(readBytes).to.equal(answered);
    const counts = ds.map((d) => d.messages.length);
    expect(Math.max(...counts) - Math.min(...counts)).to.be.at.most(1);
    expect(ds.every((d) => d.more)).to.equal(true);
  });

  it('gives what quiet streams leave to the busy one, within the same answer', async () => {
    await fill('busy', 100, 1000);
    await fill('quiet', 2, 1000);
    const ds = await readStreams(store, at0('busy', 'quiet', 'empty'), { limit: 1000, bytes: 50_000 });
    expect(ds.map((d) => [d.stream, d.messages.length])).to.deep.equal([['busy', 45], ['quiet', 2], ['empty', 0]]);
    expect(readBytes).to.equal(bytesOf(ds));
  });

  it('shares the message limit across streams the same way', async () => {
    for (const s of ['a', 'b']) await fill(s, 100, 10);
    const batch = await readBatch(store, at0('a', 'b'), { limit: 100, bytes: 1e9 });
    expect(batch.deliveries.map((d) => d.messages.length)).to.deep.equal([50, 50]);
    expect(batch.positions.get('a')!.seq).to.equal(50);
    expect(readBytes).to.equal(bytesOf(batch.deliveries));
  });

  it('sends a message larger than the whole budget alone, from one stream or many', async () => {
    await fill('huge', 2, 5000);
    const one = await readBatch(store, at0('huge'), { limit: 100, bytes: 1000 });
    expect(one.count).to.equal(1);
    expect(one.positions.get('huge')!.seq).to.equal(1);
    await fill('huger', 1, 8000);
    const many = await readBatch(store, at0('huger', 'huge'), { limit: 100, bytes: 1000 });
    expect(many.deliveries.filter((d) => d.messages.length > 0).map((d) => [d.stream, d.messages.length])).to.deep.equal([['huge', 1]]);
    expect(many.positions.get('huger')!.seq).to.equal(0);
  });

  it('moves each cursor position exactly to where the answer stopped', async () => {
    for (const s of ['a', 'b']) await fill(s, 30, 1000);
    let positions = at0('a', 'b');
    const seen: Record<string, number[]> = { a: [], b: [] };
    for (let i = 0; i < 20; i++) {
      const batch = await readBatch(store, positions, { limit: 100, bytes: 7000 });
      for (const d of batch.deliveries) seen[d.stream]!.push(...d.messages.map((m) => JSON.parse(m).seq as number));
      positions = batch.positions;
    }
    const all = Array.from({ length: 30 }, (_, i) => i + 1);
    expect(seen).to.deep.equal({ a: all, b: all });
  });
});

describe('delivery.makeBatch', () => {
  it('trims deliveries to the limit and keeps positions consistent with what was kept', () => {
    const positions = new Map([['a', { epoch: E, seq: 0 }], ['b', { epoch: E, seq: 0 }], ['c', { epoch: E, seq: 7 }]]);
    const a: StreamDelivery = { stream: 'a', messages: ['1', '2', '3', '4'], position: { epoch: E, seq: 4 } };
    const b: StreamDelivery = { stream: 'b', messages: ['1'], position: { epoch: E, seq: 1 } };
    const batch = makeBatch(positions, [a, b], { limit: 3, bytes: 1e9 });
    expect(batch.count).to.equal(3);
    expect(batch.positions.get('a')).to.deep.equal({ epoch: E, seq: 2 });
    expect(batch.positions.get('b')).to.deep.equal({ epoch: E, seq: 1 });
    expect(batch.positions.get('c')).to.deep.equal({ epoch: E, seq: 7 });
    expect([...batch.positions.keys()]).to.deep.equal(['a', 'b', 'c']);
    expect(batch.deliveries[0]!.more).to.equal(true);
  });

  it('trims to the byte budget, moving the position back past what it dropped', () => {
    const positions = new Map([['a', { epoch: E, seq: 0 }]]);
    const a: StreamDelivery = { stream: 'a', messages: ['x'.repeat(40), 'y'.repeat(40), 'z'.repeat(40)], position: { epoch: E, seq: 3 } };
    const batch = makeBatch(positions, [a], { limit: 100, bytes: 100 });
    expect(batch.count).to.equal(2);
    expect(batch.positions.get('a')).to.deep.equal({ epoch: E, seq: 2 });
  });
});
