import { expect } from 'chai';
import type { ConfigInput } from '../../lib/config.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { handshake, poll, sendAll, until, WsClient } from '../support/clients.js';


describe('WebSocket transport (GET /ws)', () => {
  let gw: TestGateway;
  const clients: WsClient[] = [];

  async function open(options: Parameters<typeof WsClient.open>[1] = { token: gw.apiKey }): Promise<WsClient> {
    const c = await WsClient.open(gw.url, options);
    clients.push(c);
    return c;
  }

  async function restart(overrides: ConfigInput): Promise<void> {
    await gw.shutdown();
    gw = await startGateway(overrides);
  }

  beforeEach(async () => {
    gw = await startGateway();
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await gw.shutdown();
  });

  describe('delivery', () => {
    it('delivers messages sent via /send in order, with a cursor over every subscribed stream', async () => {
      const c = await open();
      const sub = await c.subscribe(['room:a', 'room:b']);
      expect(sub.cursor).to.be.a('string');
      await sendAll(gw.url, gw.apiKey, 'room:a', [1, 2, 3]);
      await sendAll(gw.url, gw.apiKey, 'room:b', ['x']);
      await sendAll(gw.url, gw.apiKey, 'room:a', [4, 5]);
      const got = await c.messages(6);
      const a = got.messages.filter((m) => m.stream === 'room:a');
      expect(a.map((m) => m.data)).to.deep.equal([1, 2, 3, 4, 5]);
      expect(a.map((m) => m.seq)).to.deep.equal([1, 2, 3, 4, 5]);
      // The cursor covers both streams: /poll from it has nothing new on either.
      const after = await poll(gw.url, gw.apiKey, { streams: 'room:a,room:b', cursor: got.cursor });
      expect(after.messages).to.deep.equal([]);
    });

    it('resumes from a /poll cursor, and /poll resumes from a WebSocket cursor', async () => {
      await sendAll(gw.url, gw.apiKey, 'r', ['m1', 'm2', 'm3']);
      const first = await poll(gw.url, gw.apiKey, { streams: 'r', since: 'earliest', limit: '2' });
      expect(first.messages.map((m: any) => m.data)).to.deep.equal(['m1', 'm2']);

      const c = await open();
      await c.subscribe(['r'], { cursor: first.cursor });
      const got = await c.messages(1);
      expect(got.messages.map((m) => m.data)).to.deep.equal(['m3']);

      await sendAll(gw.url, gw.apiKey, 'r', ['m4']);
      const later = await poll(gw.url, gw.apiKey, { streams: 'r', cursor: got.cursor });
      expect(later.messages.map((m: any) => m.data)).to.deep.equal(['m4']);
    });

    it('starts at the oldest retained message with since=earliest', async () => {
      await sendAll(gw.url, gw.apiKey, 'old', ['a', 'b']);
      const c = await open();
      await c.subscribe(['old'], { since: 'earliest' });
      const got = await c.messages(2);
      expect(got.messages.map((m) => m.data)).to.deep.equal(['a', 'b']);
    });

    it('catches up a backlog larger than one batch, in order, without loss', async () => {
      await restart({ ws: { batchLimit: 7 } });
      const data = Array.from({ length: 50 }, (_, i) => i);
      await sendAll(gw.url, gw.apiKey, 'big', data);
      const c = await open();
      await c.subscribe(['big'], { since: 'earliest' });
      const got = await c.messages(50);
      expect(got.messages.map((m) => m.data)).to.deep.equal(data);
      expect(got.frames.every((f) => f.messages.length <= 7)).to.equal(true);
    });

    it('stops delivering a stream after unsubscribe and drops it from the cursor', async () => {
      const c = await open();
      await c.subscribe(['u1', 'u2']);
      c.send({ type: 'unsubscribe', streams: ['u1'], ref: 'u' });
      const un = await c.next('unsubscribed', (f) => f.ref === 'u');
      expect(un.streams).to.deep.equal(['u1']);
      await sendAll(gw.url, gw.apiKey, 'u1', ['no']);
      await sendAll(gw.url, gw.apiKey, 'u2', ['yes']);
      const got = await c.messages(1);
      expect(got.messages.map((m) => m.data)).to.deep.equal(['yes']);
      expect(gw.registry.size).to.equal(1);
    });

    it('stores a send frame, acks it with its seq, then delivers it', async () => {
      const token = await gw.token({ sub: 'u1', streams: ['chat:*'], pub: ['chat:*'] });
      const c = await open({ token });
      await c.subscribe(['chat:1']);
      c.send({ type: 'send', stream: 'chat:1', data: { text: 'hi' }, id: 'msg-1', ref: 'r1' });
      const ack = await c.next('ack');
      expect(ack).to.deep.equal({ type: 'ack', id: 'msg-1', seq: 1, stream: 'chat:1', ref: 'r1' });
      const stored = await poll(gw.url, gw.apiKey, { streams: 'chat:1', since: 'earliest' });
      expect(stored.messages.map((m: any) => m.id)).to.deep.equal(['msg-1']);
      const got = await c.messages(1);
      expect(got.messages[0]).to.include({ stream: 'chat:1', seq: 1, id: 'msg-1' });
      expect(got.messages[0]!.data).to.deep.equal({ text: 'hi' });
    });

    it('reads "cursor": null and "since": null in a subscribe frame as not given', async () => {
      await sendAll(gw.url, gw.apiKey, 'nulls', ['before']);
      const c = await open();
      const sub = await c.subscribe(['nulls'], { cursor: null, since: null });
      expect(sub.type, JSON.stringify(sub)).to.equal('subscribed');
      await sendAll(gw.url, gw.apiKey, 'nulls', ['after']);
      const got = await c.messages(1);
      expect(got.messages.map((m) => m.data)).to.deep.equal(['after']);
    });

    it('refuses sends and subscriptions the token does not allow, with error frames', async () => {
      const token = await gw.token({ sub: 'u2', streams: ['chat:*'] });
      const c = await open({ token });
      c.send({ type: 'send', stream: 'chat:1', data: 1, ref: 's' });
      expect(await c.next('error', (f) => f.ref === 's')).to.include({ code: 'forbidden' });
      c.send({ type: 'subscribe', streams: ['secret'], ref: 'x' });
      expect(await c.next('error', (f) => f.ref === 'x')).to.include({ code: 'forbidden' });
      expect(gw.registry.size).to.equal(0);
    });
  });

  describe('authentication and handshake', () => {
    it('accepts a token in the query and an auth frame', async () => {
      const token = await gw.token({ sub: 'q', streams: ['a'] });
      const byQuery = await open({ query: `token=${token}` });
      await byQuery.subscribe(['a']);

      const byFrame = await open({});
      byFrame.send({ type: 'auth', token });
      expect(await byFrame.next('authenticated')).to.include({ subject: 'q' });
      await byFrame.subscribe(['a']);
    });

    it('closes with 4401 on a bad auth frame, a frame before auth, or no auth in time', async () => {
      await restart({ ws: { authTimeoutMs: 100 } });
      const bad = await open({});
      bad.send({ type: 'auth', token: 'nope' });
      expect((await bad.closed).code).to.equal(4401);
      const early = await open({});
      early.send({ type: 'subscribe', streams: ['a'] });
      expect((await early.closed).code).to.equal(4401);
      const silent = await open({});
      expect((await silent.closed).code).to.equal(4401);
      expect(gw.websockets.size).to.equal(0);
    });

    it('answers 401 without upgrading when the header or query token is bad', async () => {
      const header = await handshake(gw.url, '/ws', { Authorization: 'Bearer not-a-token' });
      expect(header.status).to.equal(401);
      expect(JSON.parse(header.body).error.code).to.equal('unauthorized');
      const query = await handshake(gw.url, '/ws?token=abc.def.ghi');
      expect(query.status).to.equal(401);
    });

    it('answers 403 without upgrading for a foreign Origin, and accepts same-origin and allowlisted pages', async () => {
      await restart({ cors: { origins: ['https://app.example.com'] } });
      const refused = await handshake(gw.url, `/ws?token=${gw.apiKey}`, { Origin: 'https://evil.example.com' });
      expect(refused.status).to.equal(403);
      expect((await handshake(gw.url, `/ws?token=${gw.apiKey}`, { Origin: 'null' })).status).to.equal(403);
      await open({ token: gw.apiKey, origin: gw.url });
      await open({ token: gw.apiKey, origin: 'https://app.example.com' });
      expect(gw.websockets.size).to.equal(2);
    });

    it('answers 404 for an upgrade on another path, and 400 for a plain GET /ws', async () => {
      expect((await handshake(gw.url, '/poll')).status).to.equal(404);
      const plain = await fetch(`${gw.url}/ws`);
      expect(plain.status).to.equal(400);
      expect((await plain.json()).error.code).to.equal('bad_request');
    });
  });

  describe('limits', () => {
    it('answers invalid JSON, binary and unknown frames with error frames and keeps the socket', async () => {
      const c = await open();
      c.send('{not json');
      expect(await c.next('error')).to.include({ code: 'bad_request', message: 'frame is not valid JSON' });
      c.ws.send(Buffer.from([1, 2, 3]));
      expect((await c.next('error')).message).to.match(/binary/);
      c.send({ type: 'dance', ref: 7 });
      expect(await c.next('error', (f) => f.ref === 7)).to.include({ code: 'bad_request' });
      c.send({ type: 'ping', ref: 'p' });
      expect(await c.next('pong')).to.deep.equal({ type: 'pong', ref: 'p' });
    });

    it('closes a frame over maxPayloadBytes with 1009 and keeps serving other clients', async () => {
      await restart({ ws: { maxPayloadBytes: 2048 }, limits: { dataBytes: 1024, bodyBytes: 1024 } });
      const other = await open();
      await other.subscribe(['keep']);
      const big = await open();
      big.send({ type: 'ping', pad: 'x'.repeat(4096) });
      expect((await big.closed).code).to.equal(1009);
      await sendAll(gw.url, gw.apiKey, 'keep', ['still here']);
      expect((await other.messages(1)).messages[0]!.data).to.equal('still here');
    });

    it('refuses subscriptions over maxSubscriptions with limit_exceeded', async () => {
      await restart({ ws: { maxSubscriptions: 2 } });
      const c = await open();
      await c.subscribe(['s1']);
      c.send({ type: 'subscribe', streams: ['s2', 's3'], ref: 'big' });
      expect(await c.next('error', (f) => f.ref === 'big')).to.include({ code: 'limit_exceeded' });
      await c.subscribe(['s1', 's2']);
      expect(gw.registry.size).to.equal(2);
    });

    it('refuses sends over the sender\'s send rate (rateLimits) with rate_limited and stores none of them', async () => {
      await restart({ rateLimits: { apiKeySendPerSecond: 2 } });
      const c = await open();
      for (let i = 0; i < 5; i++) c.send({ type: 'send', stream: 'rl', data: i, ref: i });
      const limited = await c.next('error', (f) => f.code === 'rate_limited');
      expect(limited.ref).to.be.at.least(2);
      await c.next('ack', (f) => f.ref === 0);
      await c.next('ack', (f) => f.ref === 1);
      const stored = await poll(gw.url, gw.apiKey, { streams: 'rl', since: 'earliest' });
      expect(stored.messages.map((m: any) => m.data)).to.deep.equal([0, 1]);
    });
  });

  describe('heartbeat', () => {
    it('drops a client that stops answering pings after about interval * maxMissed + timeout, and releases it', async () => {
      const [interval, timeout, maxMissed] = [100, 50, 2];
      await restart({ ws: { pingIntervalMs: interval, pongTimeoutMs: timeout, maxMissedPongs: maxMissed } });
      const healthy = await open();
      await healthy.subscribe(['hb']);
      const mute = await open({ token: gw.apiKey, autoPong: false });
      await mute.subscribe(['hb', 'hb2']);
      expect(gw.registry.size).to.equal(3);
      const opened = Date.now();
      const { code } = await mute.closed;
      const took = Date.now() - opened;
      expect(code).to.equal(1006); // dropped without a closing handshake: the peer is not answering
      // The first ping comes within one interval of joining, the last miss is counted `timeout` after the maxMissed-th.
      expect(took).to.be.within(interval * (maxMissed - 1) + timeout - 20, interval * (maxMissed + 2) + timeout + 500);
      expect(gw.websockets.size).to.equal(1);
      expect(gw.registry.size).to.equal(1);
      // The answering client outlived several rounds and is still served.
      await sendAll(gw.url, gw.apiKey, 'hb', ['alive']);
      expect((await healthy.messages(1)).messages[0]!.data).to.equal('alive');
      await healthy.close();
      await until(() => gw.websockets.size === 0);
      expect(gw.registry.size).to.equal(0);
      expect(gw.websockets.heartbeat.timers).to.equal(0);
    });
  });

  describe('backpressure', () => {
    it('closes a client that does not read with 4008 once maxBufferedBytes is exceeded; it resumes by cursor', async () => {
      await restart({
        ws: { maxBufferedBytes: 64 * 1024, maxPayloadBytes: 512 * 1024 },
        limits: { dataBytes: 256 * 1024, bodyBytes: 512 * 1024 },
        retention: { default: { maxLength: 20 } },
      });
      const slow = await open();
      const sub = await slow.subscribe(['bp']);
      slow.ws.pause(); // stop reading: kernel buffers fill, then the server's send buffer grows
      const blob = 'x'.repeat(200 * 1024);
      let sent = 0;
      while (gw.websockets.size > 0) {
        if (++sent > 500) throw new Error('the slow client was never disconnected');
        await sendAll(gw.url, gw.apiKey, 'bp', [blob]);
      }
      expect(gw.registry.size).to.equal(0);
      slow.ws.resume();
      const { code } = await slow.closed;
      expect(code).to.equal(4008);
      // It resumes from the last cursor it read: the next message, or a gap if retention dropped it.
      const seen = slow.unread.filter((f) => f.type === 'messages');
      const last = seen.at(-1);
      const lastSeq = last ? last.messages.at(-1).seq : 0;
      const again = await open();
      await again.subscribe(['bp'], { cursor: last?.cursor ?? sub.cursor });
      const { frames } = await again.messages(1);
      const next = frames[0]!.gaps ? frames[0]!.gaps[0].from : frames[0]!.messages[0].seq;
      expect(next).to.equal(lastSeq + 1);
    });
  });

  describe('shutdown', () => {
    it('closes every socket with 1001 and releases every waiter', async () => {
      const a = await open();
      const b = await open();
      await a.subscribe(['x']);
      await b.subscribe(['x', 'y']);
      expect(gw.registry.size).to.equal(3);
      await gw.shutdown();
      expect((await a.closed).code).to.equal(1001);
      expect((await b.closed).code).to.equal(1001);
      expect(gw.websockets.size).to.equal(0);
      expect(gw.registry.size).to.equal(0);
      expect(gw.websockets.heartbeat.timers).to.equal(0);
    });
  });
});
