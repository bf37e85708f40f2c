/**
 * A connection lives no longer than its token: a WebSocket is closed with 4401 at its token's
 * expiry and acts on nothing from that moment, unless a fresh token came in-band (an auth frame on
 * an open socket), which keeps its subscriptions; an event stream ends with an `end` event saying
 * why. A socket authenticated by an auth frame counts against its subject's connection cap.
 */
import { expect } from 'chai';
import { SignJWT } from 'jose';
import { readStream } from '../support/api.js';
import { poll, sendAll, SseClient, WsClient } from '../support/clients.js';
import { startGateway, TEST_SECRET, type TestGateway } from '../support/gateway.js';
import { waitFor } from '../support/wait.js';

/** A client token that expires `seconds` from now, to the millisecond (a fractional exp). */
function shortToken(sub: string, seconds: number, claims: { streams: string[]; pub?: string[] }): Promise<string> {
  const now = Date.now() / 1000;
  return new SignJWT({ pub: [], ...claims }).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt(now).setExpirationTime(now + seconds).sign(new TextEncoder().encode(TEST_SECRET));
}

/** How long the short-lived tokens below live (s). */
const SHORT = 0.5;

describe('token lifecycle on open connections (WebSocket, SSE)', function () {
  this.timeout(20_000);
  let gw: TestGateway;
  const cleanups: (() => unknown)[] = [];

  before(async () => {
    gw = await startGateway({ auth: { clockToleranceSeconds: 0 }, limits: { parkedPerSubject: 2 }, rateLimits: { pollsPerIpPerSecond: 0 } });
  });
  afterEach(async () => {
    await Promise.all(cleanups.splice(0).map((c) => c()));
  });
  after(async () => {
    await gw.shutdown();
  });

  /** A socket authenticated by an auth frame (no credentials on the upgrade). */
  async function authed(token: string): Promise<WsClient> {
    const c = await WsClient.open(gw.url);
    cleanups.push(() => c.close());
    c.send({ type: 'auth', token, ref: 'a' });
    await Promise.race([c.next('authenticated'), c.closed.then((e) => Promise.reject(new Error(`closed ${e.code} ${e.reason}`)))]);
    return c;
  }

  /** A socket whose auth frame is refused: resolves with the close. */
  async function refusedAuth(token: string): Promise<{ code: number; reason: string }> {
    const c = await WsClient.open(gw.url);
    cleanups.push(() => c.close());
    c.send({ type: 'auth', token });
    return c.closed;
  }

  describe('WebSocket', () => {
    it('closes with 4401 "token expired" at the token\'s expiry', async () => {
      const c = await authed(await shortToken('exp-1', SHORT, { streams: ['tl:*'] }));
      await c.subscribe(['tl:a']);
      expect(await c.closed).to.deep.equal({ code: 4401, reason: 'token expired' });
    });

    it('stores nothing and subscribes nothing once the token expired, even before the expiry timer ran', async () => {
      const stream = `tl:late-${process.pid}`;
      const token = await gw.token({ sub: 'exp-2', streams: ['tl:*'], pub: ['tl:*'], ttlSeconds: 3600 });
      const c = await authed(token);
      const realNow = Date.now;
      // The clock jumps past the expiry; the timer (set for an hour from now) has not fired.
      Date.now = () => realNow() + 2 * 3600 * 1000;
      try {
        c.send({ type: 'subscribe', streams: ['tl:other'], ref: 's' });
        c.send({ type: 'send', stream, data: 'after expiry', ref: 'm' });
        expect(await c.closed).to.deep.equal({ code: 4401, reason: 'token expired' });
      } finally {
        Date.now = realNow;
      }
      expect(c.unread.filter((f) => f.type === 'subscribed' || f.type === 'ack')).to.deep.equal([]);
      expect(await readStream(gw.url, gw.apiKey, stream)).to.deep.equal([]);
    });

    it('takes a fresh token in-band: subscriptions and cursor stay, and the socket outlives the old token', async () => {
      const stream = `tl:refresh-${process.pid}`;
      const fresh = await gw.token({ sub: 'refresher', streams: ['tl:*'] });
      const short = await shortToken('refresher', 2 * SHORT, { streams: ['tl:*'] });
      const c = await authed(short);
      // A second socket on the same token: its close marks the old token's expiry.
      const control = await authed(short);
      await c.subscribe([stream]);
      c.send({ type: 'auth', token: fresh, ref: 'fresh' });
      expect(await c.next('authenticated')).to.include({ subject: 'refresher', ref: 'fresh' });
      await sendAll(gw.url, gw.apiKey, stream, [1]);
      expect((await c.messages(1)).messages.map((m) => m.data)).to.deep.equal([1]);

      expect((await control.closed).code).to.equal(4401);
      await sendAll(gw.url, gw.apiKey, stream, [2]);
      expect((await c.messages(1)).messages.map((m) => m.data)).to.deep.equal([2]);
      expect(c.ws.readyState).to.equal(c.ws.OPEN);
    });

    it('closes with 4403 when a fresh token may not read a stream already subscribed', async () => {
      const c = await authed(await gw.token({ sub: 'narrowed', streams: ['tl:*'] }));
      await c.subscribe(['tl:wide']);
      c.send({ type: 'auth', token: await gw.token({ sub: 'narrowed', streams: ['other:*'] }) });
      expect((await c.closed).code).to.equal(4403);
    });
  });

  describe('the per-subject connection cap (limits.parkedPerSubject = 2)', () => {
    it('counts a socket authenticated by an auth frame: the subject\'s next connection is refused, a third auth frame closes with 4429', async () => {
      const token = await gw.token({ sub: 'capped', streams: ['tl:*'] });
      await authed(token);
      const second = await authed(token);
      // The two sockets hold the subject's slots: an event stream is refused like a third socket.
      const sse = await fetch(`${gw.url}/sse?streams=tl:a&token=${token}`);
      expect(sse.status).to.equal(429);
      expect(((await sse.json()) as { error: { code: string } }).error.code).to.equal('rate_limited');
      const closed = await refusedAuth(token);
      expect(closed.code).to.equal(4429);
      expect(closed.reason).to.match(/too many open connections for this subject/);

      const held = gw.caps.size;
      await second.close();
      await waitFor(() => gw.caps.size < held, 'the closed socket\'s slot to come back');
      await authed(token);
    });

    it('moves the slot to the new subject when a fresh token names another one', async () => {
      const first = await gw.token({ sub: 'mover-1', streams: ['tl:*'] });
      const second = await gw.token({ sub: 'mover-2', streams: ['tl:*'] });
      const moving = await authed(first);
      await authed(first);
      await authed(second);
      moving.send({ type: 'auth', token: second, ref: 'move' });
      await moving.next('authenticated', (f) => f.ref === 'move');
      // mover-1 holds one slot now, mover-2 both of its own.
      await authed(first);
      expect((await refusedAuth(second)).code).to.equal(4429);
    });
  });

  describe('SSE', () => {
    it('ends an event stream at the token\'s expiry with an `end` event carrying the 401 error', async () => {
      const token = await shortToken('sse-exp', SHORT, { streams: ['tl:*'] });
      const { cursor } = await poll(gw.url, gw.apiKey, { streams: 'tl:sse' });
      const es = new SseClient(`${gw.url}/sse?streams=tl:sse&cursor=${encodeURIComponent(cursor)}&token=${token}`, ['ready', 'end']);
      cleanups.push(() => es.close());
      await es.next('ready');
      const end = await es.next('end', 5000);
      expect(JSON.parse(end.data)).to.deep.equal({ error: { code: 'unauthorized', message: 'token expired' } });
    });
  });
});
