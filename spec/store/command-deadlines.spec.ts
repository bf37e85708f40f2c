/**
 * The Redis store's one timer for the deadlines of every command in flight: each command whose
 * reply has not come by its deadline is failed once, in the order the commands started, and no
 * other.
 */
import { expect } from 'chai';
import { CommandDeadlines } from '../../lib/store/command-deadlines.js';
import { waitFor } from '../support/wait.js';

describe('CommandDeadlines', function () {
  it('fails each command without a reply at its deadline, oldest first, and only those', async function () {
    let now = 0;
    const deadlines = new CommandDeadlines(40, () => now);
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
    const deadlines = new CommandDeadlines(30, () => now);
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
    const deadlines = new CommandDeadlines(10);
    let expired = 0;
    for (let i = 0; i < 100; i++) deadlines.done(deadlines.start(() => expired++));
    const last = deadlines.start(() => expired++);
    await waitFor(() => expired === 1, 'the one unanswered command to expire');
    expect(deadlines.done(last)).to.equal(false);
    expect(expired).to.equal(1);
  });
});
