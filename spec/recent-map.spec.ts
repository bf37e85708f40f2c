import { expect } from 'chai';
import fc from 'fast-check';
import { RecentMap } from '../lib/recent-map.js';

describe('RecentMap (bounded memo)', function () {
  it('never holds more than its capacity', function () {
    const m = new RecentMap<number, number>(100);
    for (let i = 0; i < 1000; i++) {
      m.set(i, i);
      expect(m.size).to.be.at.most(100);
    }
    expect(m.has(0)).to.equal(false);
    expect(m.get(0)).to.equal(undefined);
  });

  it('keeps every key among the last capacity/2 keys set, with the value set last', function () {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 40 }), fc.array(fc.tuple(fc.integer({ min: 0, max: 60 }), fc.integer()), { maxLength: 300 }), (capacity, sets) => {
        const m = new RecentMap<number, number>(capacity);
        const latest = new Map<number, number>();
        const order: number[] = [];
        for (const [k, v] of sets) {
          m.set(k, v);
          latest.set(k, v);
          order.push(k);
          expect(m.size).to.be.at.most(capacity);
        }
        // The last capacity/2 distinct keys set.
        const recent = new Set<number>();
        for (let i = order.length - 1; i >= 0 && recent.size < capacity >> 1; i--) recent.add(order[i]!);
        for (const k of recent) expect(m.get(k)).to.equal(latest.get(k));
        // Whatever it still holds is the latest value (never a stale one from the older generation).
        for (const [k, v] of latest) if (m.has(k)) expect(m.get(k)).to.equal(v);
      }),
    );
  });

  it('forgets a deleted key in both generations', function () {
    const m = new RecentMap<string, number>(4);
    m.set('a', 1);
    m.set('b', 2);
    m.set('c', 3); // 'a' and 'b' are now the older generation
    m.delete('a');
    m.delete('c');
    expect(m.has('a')).to.equal(false);
    expect(m.has('c')).to.equal(false);
    expect(m.get('b')).to.equal(2);
    expect(m.size).to.equal(1);
  });

  it('remembers a key (a memo of a pure function) with one Map operation, within its capacity', function () {
    const m = new RecentMap<string, number>(8);
    const proto = Map.prototype as unknown as Record<string, (...args: unknown[]) => unknown>;
    const names = ['has', 'get', 'set', 'delete'];
    const originals = names.map((name) => proto[name]!);
    const calls: string[] = [];
    names.forEach((name, i) => {
      proto[name] = function (this: unknown, ...args: unknown[]) {
        calls.push(name);
        return originals[i]!.apply(this, args);
      };
    });
    try {
      m.set('a', 1);
      calls.length = 0;
      m.remember('b', 2);
    } finally {
      names.forEach((name, i) => (proto[name] = originals[i]!));
    }
    // set() makes three: has, a delete from the older generation, set.
    expect(calls).to.deep.equal(['set']);
    for (let i = 0; i < 100; i++) {
      m.remember(`k${i}`, i);
      expect(m.size).to.be.at.most(8);
      expect(m.get(`k${i}`)).to.equal(i);
    }
    expect(m.has('b')).to.equal(false);
    // Remembered again while it is in the older generation (k94-k97 are, after the last rotation
    // at k98): found, and still bounded.
    const older = (m as unknown as { older: Map<string, number> }).older;
    expect(older.has('k94')).to.equal(true);
    m.remember('k94', 94);
    expect(m.get('k94')).to.equal(94);
    expect(m.size).to.be.at.most(8);
  });

  it('refuses a capacity under 2', function () {
    expect(() => new RecentMap(1)).to.throw(/capacity/);
    expect(() => new RecentMap(2.5)).to.throw(/capacity/);
  });
});
