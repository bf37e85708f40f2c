/**
 * A returning client's request (a poll with its cursor, a send): what needs no I/O is answered
 * at once, not through a promise (each `await` costs one): Subscriptions.positions,
 * RateLimits.checkPoll and checkSend. Auth.authenticate's is in auth.spec.ts.
 */
import { expect } from 'chai';
import { TEST_API_KEY, TEST_SECRET } from './support/gateway.js';
import { untilParked } from './support/http.js';
import { gatewayInHost, type HostedGateway } from './support/host-app.js';
import { CursorCodec } from '../lib/cursor.js';
import type { Principal } from '../lib/auth.js';
import { BadRequestError, InvalidCursorError } from '../lib/errors.js';
import { ConnectionCaps } from '../lib/limits/connection-caps.js';
import { RateLimits } from '../lib/limits/rate-limits.js';
import { createLogger } from '../lib/log.js';
import { MemoryStore } from '../lib/store/memory-store.js';
import { messageTail, type AppendResult } from '../lib/store/store.js';
import { Subscriptions } from '../lib/subscriptions.js';
import { Messages } from '../lib/messages.js';

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

describe('RateLimits.checkPoll and checkSend', function () {
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

  it('costs a send no promise when its kind of sender is not limited, and counts the other kind', async function () {
    const limits = new RateLimits({ sendPerSecond: 1, apiKeySendPerSecond: 0, pollsPerIpPerSecond: 0 }, log);
    const server = { kind: 'server', subject: 'apikey:0' } as Principal;
    const client = { kind: 'client', subject: 'alice' } as Principal;
    expect(limits.checkSend(server, 1_000)).to.equal(undefined);
    await limits.checkSend(client, 1);
    expect(() => limits.checkSend(client, 2)).to.throw(BadRequestError);
    try {
      await limits.checkSend(client, 1);
    } catch (err) {
      expect((err as Error).name).to.equal('RateLimitedError');
      return;
    }
    throw new Error('the second send in a second was let through');
  });
});

describe('a send stored by the memory store', function () {
  const log = createLogger('silent');

  it('is appended without a promise, and publish answers at once, with no promise of its own', async function () {
    const store = new MemoryStore(() => ({ maxLength: 10, ttlSeconds: 60, metaTtlSeconds: 60 }));
    try {
      expect(store.append('a', [{ id: 'm1', sender: 's', tail: messageTail('m1', 1, '1') }])).to.deep.equal([{ stream: 'a', seq: 1, id: 'm1', duplicate: false }]);
      const messages = new Messages({
        store,
        limits: { dataBytes: 1024, batchSize: 10, streamsPerSend: 10 },
        rateLimits: new RateLimits({ sendPerSecond: 0, apiKeySendPerSecond: 0, pollsPerIpPerSecond: 0 }, log),
      });
      const server = { kind: 'server', subject: 'apikey:0', canWrite: () => true } as unknown as Principal;
      // The results themselves: a promise (publish's own as an async function, or the store's or
      // appendAll's) would cost the send a microtask turn each and the caller an await.
      const published = messages.publish(server, [messages.parse({ stream: 'a', data: 2 }, 'message')]);
      expect(published).to.not.be.instanceOf(Promise);
      expect((published as AppendResult[])[0]!.seq).to.equal(2);
      // A refusal is still a rejection, never a throw.
      const readOnly = { kind: 'client', subject: 'u', canWrite: () => false } as unknown as Principal;
      const refused = messages.publish(readOnly, [messages.parse({ stream: 'a', data: 3 }, 'message')]);
      expect(refused).to.be.instanceOf(Promise);
      await (refused as Promise<unknown>).then(
        () => expect.fail('should be refused'),
        (err: Error) => expect(err.message).to.equal('not allowed to send to stream "a"'),
      );
    } finally {
      await store.close();
    }
  });
});

describe('a returning poller, through the whole pipeline', function () {
  let host: HostedGateway;
  /** Microtask turns from the gateway's middleware taking a returning poll until it returned (the poll parked). */
  const turnsToPark: number[] = [];

  before(async function () {
    host = await gatewayInHost({ auth: { apiKeys: [TEST_API_KEY], secret: TEST_SECRET }, log: { level: 'silent' } }, async (ctx, next) => {
      if (!(ctx.req.url ?? '').includes('cursor=')) return next();
      let returned = false;
      const going = next().then(() => (returned = true));
      let turns = 0;
      while (!returned) {
        await undefined;
        turns++;
      }
      turnsToPark.push(turns);
      return going;
    });
  });

  after(async function () {
    await host?.close();
  });

  it('parks in as few microtask turns as the pipeline has promises: no await for what needs no I/O', async function () {
    const { url } = host;
    const auth = { authorization: `Bearer ${TEST_API_KEY}` };
    const stream = `returning-${Date.now()}`;
    // The first poll learns a cursor (and the key is verified: a returning poller's is known).
    const first = (await (await fetch(`${url}/poll?streams=${stream}&timeout=0`, { headers: auth })).json()) as { cursor: string };
    const parked = fetch(`${url}/poll?streams=${stream}&timeout=30&cursor=${encodeURIComponent(first.cursor)}`, { headers: auth });
    await untilParked(url, TEST_API_KEY, 1);
    await fetch(`${url}/send`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ stream, data: 1 }) });
    expect((await (await parked).json()).messages).to.have.length(1);
    // Four turns: the promises the pipeline cannot do without (the async route's and wayOut's,
    // settling one after the other). Each await added on the way adds turns: five when the
    // poll's validation was an async function of its own, more for a promise made for a key seen
    // before, a cursor that names every stream, or a caught-up poller's park.
    expect(turnsToPark).to.deep.equal([4]);
  });
});
