/**
 * A parked poll's outcome reaches whoever asks for it exactly once, whether they ask before it is
 * known (the usual case) or after (another poll of the same connection superseded it, or a
 * message answered it, before the route got to ask).
 */
import { expect } from 'chai';
import type { Position } from '../../lib/cursor.js';
import { ForbiddenError } from '../../lib/errors.js';
import { createLogger } from '../../lib/log.js';
import { MemoryStore } from '../../lib/store/memory-store.js';
import { SERVER_SENDER, messageTail } from '../../lib/store/store.js';
import { LongPolls, type Parked, type PollOutcome, type PollRequest } from '../../lib/transports/long-poll.js';
import { WaiterRegistry } from '../../lib/waiters.js';
import { PollSessions } from '../../lib/transports/poll-sessions.js';
import { Sessions } from '../../lib/sessions.js';
import { waitFor } from '../support/wait.js';
import { countTimeouts } from '../support/timeouts.js';

const RETENTION = { maxLength: 100, ttlSeconds: 3600, metaTtlSeconds: 86400 };

describe('parked poll: its outcome', function () {
  let store: MemoryStore;
  let sessions: Sessions;
  let polls: LongPolls;

  beforeEach(function () {
    store = new MemoryStore(() => RETENTION);
    const log = createLogger('silent');
    sessions = new Sessions();
    polls = new LongPolls(store, new WaiterRegistry(store, log), log, new PollSessions(sessions, 60_000));
  });
  afterEach(function () {
    polls.shutdown();
    void store.close();
  });

  const request = (stream: string, conn?: string): PollRequest => ({
    positions: new Map<string, Position>([[stream, { epoch: '', seq: 0 }]]),
    limit: 10,
    timeoutMs: 30_000,
    session: conn === undefined ? undefined : { subject: 'someone', conn },
  });

  async function park(req: PollRequest): Promise<Parked> {
    const now = await polls.poll(req);
    if (!('whenDone' in now)) throw new Error(`answered at once: ${now.end}`);
    return now;
  }

  it('parks a caught-up poll at once, not through a promise, and reads first for one behind', async function () {
    const parked = polls.poll(request('s0'));
    expect(parked).not.to.be.instanceOf(Promise);
    expect(polls.size).to.equal(1);
    await store.append('s0', [{ id: 'm1', sender: SERVER_SENDER, tail: messageTail('m1', 1, '1') }]);
    const behind = polls.poll(request('s0'));
    expect(behind).to.be.instanceOf(Promise);
    expect(((await behind) as PollOutcome).end).to.equal('messages');
  });

  it('holds every parked poll of one hold length on one timer, not a Timeout each', async function () {
    // A hold no other timer in this process has: the Timeouts made for it are the holds'.
    const timers = countTimeouts(34_567);
    try {
      const parked: Parked[] = [];
      for (let i = 0; i < 20; i++) parked.push(await park({ ...request(`hold${i}`), timeoutMs: 34_567 }));
      expect(polls.size).to.equal(20);
      // A setTimeout each made 20.
      expect(timers.made).to.equal(1);
      // Shut down, every poll is answered and no hold's timer is left running.
      await polls.shutdown();
      const ends = await Promise.all(parked.map((p) => new Promise<string>((resolve) => p.whenDone((o) => resolve(o.end)))));
      expect(new Set(ends)).to.deep.equal(new Set(['shutdown']));
      expect(polls.holds.lengths).to.equal(0);
    } finally {
      timers.stop();
    }
  });

  it('keeps what it needs of its request while it waits, not the request with its session', async function () {
    const req: PollRequest = { ...request('s8'), session: { subject: 'someone', conn: 'c1' } };
    const parked = await park(req);
    const held = Object.values(parked as object);
    expect(held).not.to.include(req);
    expect(held).not.to.include(req.session);
    expect(held).to.include(req.positions);
  });

  it('calls back once, when a message arrives', async function () {
    const parked = await park(request('s1'));
    const seen: PollOutcome[] = [];
    parked.whenDone((o) => seen.push(o));
    expect(seen).to.have.length(0);
    await store.append('s1', [{ id: 'm1', sender: SERVER_SENDER, tail: messageTail('m1', 1, '1') }]);
    await waitFor(() => seen.length > 0, 'the parked poll to be answered');
    expect(seen.map((o) => o.end)).to.deep.equal(['messages']);
    expect(seen[0]!.batch.deliveries[0]!.messages).to.have.length(1);
    polls.shutdown();
    expect(seen).to.have.length(1);
  });

  it('calls back at once when the outcome came before anyone asked', async function () {
    const first = await park(request('s2', 'conn'));
    // A newer poll of the same connection supersedes the first before its route asked.
    await park(request('s2', 'conn'));
    const seen: PollOutcome[] = [];
    first.whenDone((o) => seen.push(o));
    expect(seen.map((o) => o.end)).to.deep.equal(['superseded']);
    expect(polls.size).to.equal(1);
  });

  it('answers a poll whose session was kicked while it read with the kick, and lets the next poll of its conn park', async function () {
    // A store that does not know its heads without I/O (as Redis before its wake-ups flow): the
    // caught-up poll reads before it parks.
    (store as { knownHead?: unknown }).knownHead = undefined;
    const reading = polls.poll(request('s5', 'tab'));
    expect(reading).to.be.instanceOf(Promise);
    // POST /disconnect lands while the read is in flight.
    expect(sessions.kick('someone', Date.now() + 1, new ForbiddenError('disconnected by the server'))).to.equal(1);
    const outcome = (await reading) as PollOutcome;
    expect(outcome.end).to.equal('disconnected');
    expect(outcome.error?.message).to.equal('disconnected by the server');
    expect(polls.size).to.equal(0);
    await park(request('s5b', 'tab'));
    expect(polls.size).to.equal(1);
  });

  it('tells every caller that asked before it ended, and refuses one that asks after', async function () {
    const parked = await park(request('s4'));
    const seen: string[] = [];
    parked.whenDone((o) => seen.push(`first:${o.end}`));
    const promised = parked.outcome;
    polls.shutdown();
    expect(seen).to.deep.equal(['first:shutdown']);
    expect((await promised).end).to.equal('shutdown');
    expect(() => parked.whenDone(() => seen.push('late'))).to.throw(/outcome was told/);
    await parked.outcome.then(
      () => expect.fail('a late outcome must be refused'),
      (err: Error) => expect(err.message).to.match(/ask before it ends/),
    );
    expect(seen).to.deep.equal(['first:shutdown']);
  });

  it('keeps no outcome once told: an ended poll is old, and what it kept would be promoted with it', async function () {
    const parked = await park(request('s5'));
    let told: PollOutcome | undefined;
    parked.whenDone((o) => (told = o));
    await store.append('s5', [{ id: 'm1', sender: SERVER_SENDER, tail: messageTail('m1', 1, '1') }]);
    await waitFor(() => told !== undefined, 'the parked poll to be answered');
    expect(told!.batch.count).to.equal(1);
    const held = Object.values(parked as object);
    expect(held).not.to.include(told);
    expect(held).not.to.include(told!.batch);
  });

  it('resolves the outcome promise the same way', async function () {
    const parked = await park(request('s3'));
    polls.shutdown();
    expect((await parked.outcome).end).to.equal('shutdown');
    expect(polls.size).to.equal(0);
  });

  it('gives the polls of a broadcast parked at the same position one batch (SharedAnswer)', async function () {
    const one = [await park(request('b1')), await park(request('b1')), await park(request('b1'))];
    const other = await park({ ...request('b1'), limit: 5 });
    const two = await park({ ...request('b1'), positions: new Map<string, Position>([['b1', { epoch: '', seq: 0 }], ['b2', { epoch: '', seq: 0 }]]) });
    await store.append('b1', [{ id: 'm1', sender: SERVER_SENDER, tail: messageTail('m1', 1, '1') }]);
    const [a, b, c, d, e] = await Promise.all([...one, other, two].map((p) => p.outcome));
    for (const o of [a, b, c, d, e]) expect(o!.batch.count).to.equal(1);
    expect(b!.batch).to.equal(a!.batch);
    expect(c!.batch).to.equal(a!.batch);
    // Another limit, or a poll of two streams (its cursor holds both), gets a batch of its own.
    expect(d!.batch).to.not.equal(a!.batch);
    expect(e!.batch).to.not.equal(a!.batch);
    expect([...e!.batch.positions.keys()]).to.deep.equal(['b1', 'b2']);
  });

  it('parks a caught-up poll without reading the store, and reads for one behind the head (atKnownHeads)', async function () {
    const [appended] = await store.append('c1', [{ id: 'm1', sender: SERVER_SENDER, tail: messageTail('m1', 1, '1') }]);
    const epoch = store.knownHead('c1').epoch;
    let reads = 0;
    const read = store.read.bind(store);
    store.read = (...args: Parameters<MemoryStore['read']>) => (reads++, read(...args));
    const atHead = await park({ ...request('c1'), positions: new Map([['c1', { epoch, seq: appended!.seq }]]) });
    expect(reads).to.equal(0);
    const behind = await polls.poll({ ...request('c1'), positions: new Map([['c1', { epoch, seq: 0 }]]) });
    expect(reads).to.equal(1);
    expect('whenDone' in behind ? 'parked' : behind.batch.count).to.equal(1);
    await store.append('c1', [{ id: 'm2', sender: SERVER_SENDER, tail: messageTail('m2', 2, '2') }]);
    expect((await atHead.outcome).batch.deliveries[0]!.messages).to.have.length(1);
  });
});
