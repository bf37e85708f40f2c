import { expect } from 'chai';
import { makeBatch, resolve, shareLimit, type StreamDelivery } from '../lib/delivery.js';
import type { StreamRead } from '../lib/store/store.js';

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

describe('delivery.shareLimit', () => {
  it('gives small streams all they have and splits the rest evenly', () => {
    expect(shareLimit([2, 100, 100], 50)).to.deep.equal([2, 24, 24]);
    expect(shareLimit([5, 5], 100)).to.deep.equal([5, 5]);
    expect(shareLimit([100], 10)).to.deep.equal([10]);
    expect(shareLimit([], 10)).to.deep.equal([]);
  });

  it('never hands out more than the limit', () => {
    const shares = shareLimit([7, 3, 50, 1, 20], 17);
    expect(shares.reduce((a, b) => a + b, 0)).to.equal(17);
  });
});

describe('delivery.makeBatch', () => {
  it('trims deliveries to the limit and keeps positions consistent with what was kept', () => {
    const positions = new Map([['a', { epoch: E, seq: 0 }], ['b', { epoch: E, seq: 0 }], ['c', { epoch: E, seq: 7 }]]);
    const a: StreamDelivery = { stream: 'a', messages: ['1', '2', '3', '4'], position: { epoch: E, seq: 4 } };
    const b: StreamDelivery = { stream: 'b', messages: ['1'], position: { epoch: E, seq: 1 } };
    const batch = makeBatch(positions, [a, b], 3);
    expect(batch.count).to.equal(3);
    expect(batch.positions.get('a')).to.deep.equal({ epoch: E, seq: 2 });
    expect(batch.positions.get('b')).to.deep.equal({ epoch: E, seq: 1 });
    expect(batch.positions.get('c')).to.deep.equal({ epoch: E, seq: 7 });
    expect([...batch.positions.keys()]).to.deep.equal(['a', 'b', 'c']);
  });
});
