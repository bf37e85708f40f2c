import { expect } from 'chai';
import { check, type Ack, type History, type PollEvent } from './checker.js';

const T = 1_700_000_000_000;

function ack(n: number, seq: number, at = T + n): Ack {
  return { stream: 's', id: `a-${n}`, seq, sender: 'a', n, at };
}

function msg(n: number, seq: number): PollEvent {
  return { type: 'msg', seq, id: `a-${n}`, at: T + 100 };
}

function history(events: PollEvent[], acks: Ack[], extra: Partial<History> = {}): History {
  return { streams: ['s'], acks, indeterminate: [], pollers: [{ name: 'p', streams: new Map([['s', events]]) }], redisCrashes: [], crashWindowMs: 2000, ...extra };
}

describe('fault checker', () => {
  it('passes a complete, ordered delivery and drops seqs already seen', () => {
    const r = check(history([msg(1, 1), msg(2, 2), msg(2, 2), msg(3, 3)], [ack(1, 1), ack(2, 2), ack(3, 3)]));
    expect(r.ok).to.equal(true);
    expect(r.streams[0]).to.include({ acknowledged: 3, delivered: 3, lost: 0, redelivered: 1 });
  });

  it('reports an acknowledged message never delivered as lost', () => {
    const r = check(history([msg(1, 1), msg(3, 3)], [ack(1, 1), ack(2, 2), ack(3, 3)]));
    expect(r.ok).to.equal(false);
    expect(r.streams[0]).to.include({ lost: 1, holes: 1 });
  });

  it('excuses a message the client was told it missed (gap)', () => {
    const r = check(history([msg(1, 1), { type: 'gap', from: 2, to: 2, at: T }, msg(3, 3)], [ack(1, 1), ack(2, 2), ack(3, 3)]));
    expect(r.ok).to.equal(true);
    expect(r.streams[0]).to.include({ lost: 0, gaps: 1 });
  });

  it('excuses a loss in the crash window only when the client was told of a reset after the crash', () => {
    const crash = T + 5000;
    const acks = [ack(1, 1), ack(2, 2, crash - 500), ack(3, 2, crash + 2000)];
    const told = check(history([msg(1, 1), { type: 'reset', at: crash + 3000 }, msg(1, 1), msg(3, 2)], acks, { redisCrashes: [crash] }));
    expect(told.ok).to.equal(true);
    expect(told.streams[0]).to.include({ lost: 0, lostInCrashWindow: 1, resets: 1 });
    const silent = check(history([msg(1, 1), msg(3, 2)], acks, { redisCrashes: [crash] }));
    expect(silent.ok).to.equal(false);
    const early = check(history([msg(1, 1), { type: 'reset', at: crash + 3000 }, msg(1, 1), msg(3, 2)], [ack(1, 1), ack(2, 2, crash - 5000), ack(3, 2, crash + 2000)], { redisCrashes: [crash] }));
    expect(early.streams[0]!.lost, 'outside the window').to.equal(1);
  });

  it('reports one id at two seqs as duplicated, and a sender going backwards as reordered', () => {
    const dup = check(history([msg(1, 1), msg(1, 2)], [ack(1, 1)]));
    expect(dup.streams[0]).to.include({ duplicated: 1 });
    const back = check(history([msg(2, 1), msg(1, 2)], [ack(1, 2), ack(2, 1)]));
    expect(back.streams[0]).to.include({ reordered: 1 });
    expect(back.ok).to.equal(false);
  });

  it('accepts the same messages again after a reset, and counts indeterminate sends that arrived as recovered', () => {
    const h = history([msg(1, 1), { type: 'reset', at: T }, msg(1, 1), { type: 'msg', seq: 2, id: 'a-9', at: T }], [ack(1, 1)], { indeterminate: [{ stream: 's', id: 'a-9' }, { stream: 's', id: 'a-10' }] });
    const r = check(h);
    expect(r.ok).to.equal(true);
    expect(r.streams[0]).to.include({ indeterminate: 2, recovered: 1, duplicated: 0 });
  });

  it('reports an id stored twice in the final log', () => {
    const r = check(history([], [], { finalLog: new Map([['s', [{ seq: 1, id: 'x' }, { seq: 2, id: 'x' }]]]) }));
    expect(r.streams[0]).to.include({ duplicated: 1 });
  });
});
