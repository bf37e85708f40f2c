/**
 * Subscriptions.positions and RateLimits.checkPoll on a returning poller's path: what needs no
 * I/O is answered at once, not through a promise (each `await` of a poll costs one).
 */
import { expect } from 'chai';
import { CursorCodec } from '../lib/cursor.js';
import { InvalidCursorError } from '../lib/errors.js';
import { ConnectionCaps } from '../lib/limits/connection-caps.js';
import { RateLimits } from '../lib/limits/rate-limits.js';
import { createLogger } from '../lib/log.js';
import { MemoryStore } from '../lib/store/memory-store.js';
import { messageTail } from '../lib/store/store.js';
import { Subscriptions } from '../lib/subscriptions.js';

const SECRET = 'positions-secret-0123456789abcdefghijkl';

describe('Subscriptions.positions', function () {
  let store: MemoryStore;
  let subscriptions: Subscriptions;
  const cursors = new CursorCodec(SECRET);

  beforeEach(async function () {
    store = new MemoryStore(() => ({ maxLength: 10, ttlSeconds: 60, metaTtlSeconds: 60 }));
    subscriptions = new Subscriptions({ store, cursors, caps: new ConnectionCaps({ perSubject: 10, perIp: 10, perProcess: 10, retryAfterSeconds: 1 }) });
    await store.append('a', [{ id: 'm1', sender: 's', tail: messageTail('m1', 1, '1') }]);
  });
  afterEach(() => store.close());

  it("gives a cursor's positions at once when it names every stream", async function () {
    const started = await subscriptions.positions({ streams: ['a', 'b'], since: 'earliest' });
    const cursor = cursors.encode(started);
    const again = subscriptions.positions({ streams: ['a', 'b'], cursor, since: 'now' });
    expect(again).to.be.instanceOf(Map);
    const seqs = (m: Map<string, { seq: number }>) => [...m].map(([stream, p]) => [stream, p.seq]);
    expect(seqs(again as Map<string, { seq: number }>)).to.deep.equal([['a', 0], ['b', 0]]);
    expect(seqs(started)).to.deep.equal([['a', 0], ['b', 0]]);
  });

  it('looks up the streams a cursor does not name, through a promise', async function () {
    const cursor = cursors.encode(await subscriptions.positions({ streams: ['a'], since: 'earliest' }));
    const more = subscriptions.positions({ streams: ['a', 'b'], cursor, since: 'now' });
    expect(more).to.be.instanceOf(Promise);
    expect([...(await more).keys()]).to.deep.equal(['a', 'b']);
  });

  it('refuses an altered cursor', function () {
    expect(() => subscriptions.positions({ streams: ['a'], cursor: 'AAAA', since: 'now' })).to.throw(InvalidCursorError);
  });
});

describe('RateLimits.checkPoll', function () {
  const log = createLogger('silent');

  it('costs no promise when polls are not limited', function () {
    expect(new RateLimits({ sendPerSecond: 0, apiKeySendPerSecond: 0, pollsPerIpPerSecond: 0 }, log).checkPoll('10.0.0.1')).to.equal(undefined);
  });

  it('counts every poll when they are, and refuses the one over the rate', async function () {
    const limits = new RateLimits({ sendPerSecond: 0, apiKeySendPerSecond: 0, pollsPerIpPerSecond: 2 }, log);
    await limits.checkPoll('10.0.0.2');
    await limits.checkPoll('10.0.0.2');
    try {
      await limits.checkPoll('10.0.0.2');
    } catch (err) {
      expect((err as Error).name).to.equal('RateLimitedError');
      return;
    }
    throw new Error('the third poll in a second was let through');
  });
});
