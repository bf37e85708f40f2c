/**
 * SameLengthDeadlines: deadlines of one length in one queue with one timer. Each expires once,
 * in the order set, and not at all once cancelled; the timer re-arms past a cancelled head and
 * stops when the queue is empty.
 */
import { expect } from 'chai';
import { SameLengthDeadlines } from '../../lib/http/deadlines.js';

describe('SameLengthDeadlines', function () {
  it('expires each deadline once, in the order set, and skips cancelled ones', async function () {
    const q = new SameLengthDeadlines(20);
    const expired: string[] = [];
    let last!: () => void;
    const allDone = new Promise<void>((r) => (last = r));
    const a = q.set(() => expired.push('a'));
    q.set(() => expired.push('b'));
    const c = q.set(() => expired.push('c'));
    q.set(() => {
      expired.push('d');
      last();
    });
    a.cancel();
    c.cancel();
    c.cancel();
    expect(q.pending).to.equal(2);
    await allDone;
    expect(expired).to.deep.equal(['b', 'd']);
    expect(q.pending).to.equal(0);
  });

  it('does not expire a deadline before its length has passed, when an earlier one was cancelled', async function () {
    let now = 1000;
    const q = new SameLengthDeadlines(30, () => now);
    const first = q.set(() => expect.fail('cancelled'));
    now = 1020;
    const started = Date.now();
    let expiredAt = 0;
    const expired = new Promise<void>((r) =>
      q.set(() => {
        expiredAt = now;
        r();
      }),
    );
    first.cancel();
    // The timer armed for the first (due at 1030) finds nothing due and re-arms for the second (1050).
    const tick = setInterval(() => (now = 1000 + 20 + (Date.now() - started)), 1);
    try {
      await expired;
    } finally {
      clearInterval(tick);
    }
    expect(expiredAt).to.be.at.least(1050);
  });

  it('takes deadlines again after the queue ran empty', async function () {
    const q = new SameLengthDeadlines(5);
    await new Promise<void>((r) => q.set(r));
    expect(q.pending).to.equal(0);
    await new Promise<void>((r) => q.set(r));
    expect(q.pending).to.equal(0);
  });
});
