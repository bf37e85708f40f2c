import { expect } from 'chai';
import { fitBudget, splitBudget } from '../lib/answer-budget.js';

describe('fitBudget', () => {
  const list = (n: number, size = 10) => Array.from({ length: n }, () => 'x'.repeat(size));

  it('takes one message from each list in turn, so a busy stream cannot starve the others', () => {
    expect(fitBudget([list(2), list(100), list(100)], { limit: 50, bytes: 1e9 })).to.deep.equal([2, 24, 24]);
    expect(fitBudget([list(5), list(5)], { limit: 100, bytes: 1e9 })).to.deep.equal([5, 5]);
    expect(fitBudget([list(100)], { limit: 10, bytes: 1e9 })).to.deep.equal([10]);
    expect(fitBudget([], { limit: 10, bytes: 1e9 })).to.deep.equal([]);
  });

  it('never hands out more than the limit', () => {
    const counts = fitBudget([list(7), list(3), list(50), list(1), list(20)], { limit: 17, bytes: 1e9 });
    expect(counts.reduce((a, b) => a + b, 0)).to.equal(17);
  });

  it('shares the bytes the same way and stops each list at its first message that would not fit', () => {
    // One from each in turn: 4 of each (100 bytes), then neither list's next message fits.
    expect(fitBudget([list(20, 5), list(20, 20)], { limit: 100, bytes: 100 })).to.deep.equal([4, 4]);
    expect(fitBudget([list(3, 10), ['x'.repeat(95)], list(3, 10)], { limit: 100, bytes: 100 })).to.deep.equal([3, 0, 3]);
  });

  it('counts UTF-8 bytes, not characters', () => {
    expect(fitBudget([['€€€€', '€€€€']], { limit: 10, bytes: 20 })).to.deep.equal([1]);
  });

  it('sends a message larger than the whole budget alone, and only when nothing else fits', () => {
    expect(fitBudget([[], ['x'.repeat(500), 'y'], ['z'.repeat(600)]], { limit: 10, bytes: 100 })).to.deep.equal([0, 1, 0]);
    expect(fitBudget([['x'.repeat(500)], ['y']], { limit: 10, bytes: 100 })).to.deep.equal([0, 1]);
  });
});

describe('splitBudget', () => {
  const part = (next = 0) => ({ next });

  it('splits bytes evenly and messages evenly, at least one each', () => {
    const [a, b, c] = [part(), part(), part()];
    expect(splitBudget([a, b, c], { limit: 100, bytes: 300 }).map(([, s]) => s)).to.deep.equal([
      { limit: 34, bytes: 100 }, { limit: 34, bytes: 100 }, { limit: 34, bytes: 100 },
    ]);
    expect(splitBudget([a, b], { limit: 1, bytes: 300 }).map(([, s]) => s.limit)).to.deep.equal([1, 1]);
  });

  it('gives a stream the size of its next message when it fits, and no read when it does not', () => {
    const [small, big, huge] = [part(10), part(250), part(400)];
    const shares = splitBudget([huge, big, small], { limit: 10, bytes: 300 });
    expect(shares.map(([p, s]) => [p.next, s.bytes])).to.deep.equal([[250, 250], [10, 50]]);
  });

  it('never hands out more bytes than are left', () => {
    const parts = [part(7), part(0), part(90), part(33), part(0)];
    const total = splitBudget(parts, { limit: 100, bytes: 160 }).reduce((n, [, s]) => n + s.bytes, 0);
    expect(total).to.be.at.most(160);
  });
});
