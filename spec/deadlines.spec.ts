/**
 * SameLengthDeadlines, the one timer for the Redis store's commands in flight and for request
 * bodies being read: each deadline whose work is not done by then expires once, in the order
 * they started, and no other; the timer re-arms past entries that are done and takes deadlines
 * again after the queue ran empty.
 */
import { expect } from 'chai';
import { DeadlinesByLength, SameLengthDeadlines } from '../lib/deadlines.js';
import { waitFor } from './support/wait.js';
import { countTimeouts } from './support/timeouts.js';

describe('SameLengthDeadlines', function () {
  it('fails each command without a reply at its deadline, oldest first, and only those', async function () {
    let now = 0;
    const deadlines = new SameLengthDeadlines(40, () => now);
    const expired: string[] = [];
    const a = deadlines.start(() => expired.push('a'));
    const b = deadlines.start(() => expired.push('b'));
    now = 15;
    const c = deadlines.start(() => expired.push('c'));
    expect(deadlines.done(b)).to.equal(true);
    // Past both deadlines (40 and 55) by the time the timer looks.
    now = 60;
    await waitFor(() => expired.length === 2, 'a and c to expire');
    expect(expired).to.deep.equal(['a', 'c']);
    // A reply after the deadline is too late: done() says so, and nothing runs twice.
    expect(deadlines.done(a)).to.equal(false);
    expect(deadlines.done(c)).to.equal(false);
    expect(deadlines.size).to.equal(0);
  });

  it('keeps a later command waiting for its own deadline when an earlier one expires', async function () {
    let now = 0;
    const deadlines = new SameLengthDeadlines(30, () => now);
    const expired: string[] = [];
    deadlines.start(() => expired.push('first'));
    now = 20;
    const second = deadlines.start(() => expired.push('second'));
    now = 30;
    // The timer fires for the first; the second (due at 50) must wait.
    await waitFor(() => expired.length === 1, 'the first to expire');
    expect(expired).to.deep.equal(['first']);
    expect(deadlines.size).to.equal(1);
    now = 50;
    await waitFor(() => expired.length === 2, 'the second to expire');
    expect(deadlines.done(second)).to.equal(false);
  });

  it('never fails a command that answered in time', async function () {
    const deadlines = new SameLengthDeadlines(10);
    let expired = 0;
    for (let i = 0; i < 100; i++) deadlines.done(deadlines.start(() => expired++));
    const last = deadlines.start(() => expired++);
    await waitFor(() => expired === 1, 'the one unanswered command to expire');
    expect(deadlines.done(last)).to.equal(false);
    expect(expired).to.equal(1);
  });

  it('re-arms past an oldest entry that is done, for the next one due', async function () {
    let now = 1000;
    let clockReads = 0;
    const deadlines = new SameLengthDeadlines(30, () => (clockReads++, now));
    const expired: string[] = [];
    const first = deadlines.start(() => expired.push('first'));
    now = 1020;
    deadlines.start(() => expired.push('second'));
    deadlines.done(first);
    // The timer armed for the first (due at 1030) looks at the clock, finds nothing due at 1035
    // and waits for the second (due at 1050).
    now = 1035;
    const readsBefore = clockReads;
    await waitFor(() => clockReads > readsBefore, 'the timer to look at the clock');
    expect(expired).to.deep.equal([]);
    expect(deadlines.size).to.equal(1);
    now = 1050;
    await waitFor(() => expired.length === 1, 'the second to expire');
    expect(expired).to.deep.equal(['second']);
  });

  it('takes deadlines again after the queue ran empty, and counts only those pending', async function () {
    const deadlines = new SameLengthDeadlines(5);
    await new Promise<void>((r) => deadlines.start(r));
    expect(deadlines.size).to.equal(0);
    const a = deadlines.start(() => expect.fail('a was done'));
    const b = deadlines.start(() => undefined);
    expect(deadlines.size).to.equal(2);
    expect(deadlines.done(a)).to.equal(true);
    expect(deadlines.done(a)).to.equal(false);
    expect(deadlines.size).to.equal(1);
    await waitFor(() => deadlines.size === 0, 'b to expire');
    expect(deadlines.done(b)).to.equal(false);
  });

  it('stops its timer only when idle (stopIfIdle): a pending deadline still expires, and a later start arms it again', async function () {
    let now = 0;
    const deadlines = new SameLengthDeadlines(9, () => now);
    const expired: string[] = [];
    const timers = countTimeouts(9);
    try {
      deadlines.start(() => expired.push('pending'));
      deadlines.stopIfIdle();
      now = 10;
      await waitFor(() => expired.length === 1, 'the pending deadline to expire');
      deadlines.done(deadlines.start(() => expired.push('done')));
      expect(timers.running).to.equal(1);
      deadlines.stopIfIdle();
      // A cleared Timeout is reported destroyed a turn later: no event to await, so two turns.
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setImmediate(r));
      expect(timers.running).to.equal(0);
      deadlines.start(() => expired.push('later'));
      now = 20;
      await waitFor(() => expired.length === 2, 'a deadline started after the stop to expire');
      expect(expired).to.deep.equal(['pending', 'later']);
    } finally {
      deadlines.stop();
      timers.stop();
    }
  });

  it('keeps one timer when an expiry starts a deadline', async function () {
    let now = 0;
    // A length no other timer in this process has: the Timeouts made for it are the queue's.
    const deadlines = new SameLengthDeadlines(7, () => now);
    const expired: string[] = [];
    const timers = countTimeouts(7);
    try {
      deadlines.start(() => {
        expired.push('a');
        // An expiry that starts another deadline (a retry, say) arms the timer itself.
        deadlines.start(() => expired.push('c'));
      });
      deadlines.start(() => {
        expired.push('b');
        // Past c's deadline (17) before its timer fires, whenever that is: it finds c due, and
        // nothing re-arms. The expiry loop itself still reads 10, as it did when it began.
        now = 20;
      });
      now = 10;
      await waitFor(() => expired.length === 3, 'a, b and then c to expire');
      expect(expired).to.deep.equal(['a', 'b', 'c']);
      // The first start's, then the one the expiry's start() armed; re-arming over it left an orphan that fired for nothing.
      expect(timers.made).to.equal(2);
    } finally {
      timers.stop();
    }
  });
});

describe('DeadlinesByLength', function () {
  it('expires each deadline at its own length, with its subject, and drops a length once its timer found it empty', async function () {
    let now = 0;
    const holds = new DeadlinesByLength(() => now);
    const expired: string[] = [];
    const expire = (name: string) => expired.push(name);
    const short = holds.start(20, expire, 'short');
    const long = holds.start(50, expire, 'long');
    const answered = holds.start(20, expire, 'answered');
    expect(holds.lengths).to.equal(2);
    expect(holds.done(answered)).to.equal(true);
    now = 25;
    await waitFor(() => expired.length === 1, 'the 20 ms deadline to expire');
    expect(expired).to.deep.equal(['short']);
    // Too late for it; nothing else of that length: its timer stopped and the length is dropped.
    expect(holds.done(short)).to.equal(false);
    expect(holds.lengths).to.equal(1);
    // Answered in time: kept until its timer runs out and finds nothing due.
    expect(holds.done(long)).to.equal(true);
    now = 100;
    await waitFor(() => holds.lengths === 0, 'the 50 ms queue to be dropped');
    expect(expired).to.deep.equal(['short']);
  });

  it('keeps deadlines of one length on one timer, however many, also when each ends before the next starts', async function () {
    // A length no other timer in this process has: the Timeouts made for it are the queue's.
    const timers = countTimeouts(4567);
    try {
      const holds = new DeadlinesByLength();
      const together = Array.from({ length: 50 }, (_, i) => holds.start(4567, () => undefined, i));
      for (const d of together) holds.done(d);
      // A lone poller: each answer empties the queue, and its next poll starts it again.
      for (let i = 0; i < 100; i++) holds.done(holds.start(4567, () => undefined, i));
      expect(holds.lengths).to.equal(1);
      expect(timers.made).to.equal(1);
      // A shutdown's: the timer still running for the emptied queue is stopped, not left to run out.
      holds.stop();
      expect(holds.lengths).to.equal(0);
    } finally {
      timers.stop();
    }
  });
});
