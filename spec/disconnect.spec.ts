/**
 * POST /disconnect (lib/disconnect.ts): every connection of a subject ends the way its transport
 * ends (WebSocket 4403, an SSE `end` event, a parked poll's 403), on every node; with revoke its
 * older tokens are refused; a lost Pub/Sub message is made good by the re-check.
 */
import { expect } from 'chai';
import { SignJWT } from 'jose';
import { startGateway, TEST_SECRET, type TestGateway } from './support/gateway.js';
import { handshake, WsClient } from './support/clients.js';
import { expectFetchError } from './support/http.js';
import { redisClient, sharedRedis, uniquePrefix } from './support/redis.js';
import { Disconnects, type DisconnectBus, type DisconnectEvent } from '../lib/disconnect.js';
import { createLogger } from '../lib/log.js';
import { Sessions } from '../lib/sessions.js';

async function disconnect(gw: TestGateway, body: unknown, key = gw.apiKey): Promise<globalThis.Response> {
  return fetch(`${gw.url}/disconnect`, { method: 'POST', headers: { Authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

/** Reads an event stream until `done(text)` holds or it ends. */
async function readUntil(res: globalThis.Response, done: (text: string) => boolean): Promise<string> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  for (;;) {
    const { value, done: ended } = await reader.read();
    if (ended) return text;
    text += decoder.decode(value, { stream: true });
    if (done(text)) {
      await reader.cancel();
      return text;
    }
  }
}

/** A token for `sub` whose iat is `iatSeconds` (mintToken always uses now). */
function tokenIssuedAt(sub: string, iatSeconds: number): Promise<string> {
  return new SignJWT({ streams: ['*'], pub: ['*'] }).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt(iatSeconds).setExpirationTime(iatSeconds + 3600).sign(new TextEncoder().encode(TEST_SECRET));
}

describe('POST /disconnect', () => {
  describe('on one node', () => {
    let gw: TestGateway;
    beforeEach(async () => {
      gw = await startGateway();
    });
    afterEach(() => gw.shutdown());

    it('closes a WebSocket with 4403, ends an event stream with an end event, answers a parked poll 403, and leaves other subjects alone', async () => {
      const bob = await gw.token({ sub: 'bob', streams: ['d:*'] });
      const ann = await gw.token({ sub: 'ann', streams: ['d:*'] });
      const ws = await WsClient.open(gw.url, { token: bob });
      await ws.subscribe(['d:1']);
      const other = await WsClient.open(gw.url, { token: ann });
      await other.subscribe(['d:1']);
      const sse = await fetch(`${gw.url}/sse?streams=d:1`, { headers: { Authorization: `Bearer ${bob}` } });
      const sseText = readUntil(sse, (t) => t.includes('event: end'));
      const parked = fetch(`${gw.url}/poll?streams=d:1&timeout=20&conn=c1`, { headers: { Authorization: `Bearer ${bob}` } });
      await new Promise<void>((resolve) => {
        const check = () => (gw.longPolls.size === 1 && gw.sse.size === 1 ? resolve() : setImmediate(check));
        check();
      });
      const res = await disconnect(gw, { sub: 'bob' });
      expect(res.status).to.equal(200);
      expect(await res.json()).to.deep.equal({ sub: 'bob', connections: 3 });
      expect(await ws.closed).to.deep.equal({ code: 4403, reason: 'disconnected by the server' });
      await expectFetchError(await parked, 403, 'forbidden');
      expect(await sseText).to.match(/event: end\ndata: \{"error":\{"code":"forbidden","message":"disconnected by the server"\}\}/);
      expect(gw.sessions.of('bob')).to.deep.equal([]);
      other.send({ type: 'ping', ref: 1 });
      await other.next('pong');
      await other.close();
      // Without revoke the same token connects again.
      const again = await WsClient.open(gw.url, { token: bob });
      await again.close();
    });

    it('with revoke, refuses the subject\'s tokens issued until then (401 token revoked), and accepts newer ones', async () => {
      const old = await gw.token({ sub: 'eve', streams: ['d:*'] });
      expect((await fetch(`${gw.url}/poll?streams=d:2&timeout=0`, { headers: { Authorization: `Bearer ${old}` } })).status).to.equal(200);
      const res = await disconnect(gw, { sub: 'eve', revoke: true });
      const body = (await res.json()) as { revokedUntil: number };
      expect(body.revokedUntil).to.be.closeTo(Date.now() + 86_400_000, 5000);
      const refused = await fetch(`${gw.url}/poll?streams=d:2&timeout=0`, { headers: { Authorization: `Bearer ${old}` } });
      expect(((await refused.clone().json()) as any).error.message).to.equal('token revoked');
      await expectFetchError(refused, 401, 'unauthorized');
      expect((await handshake(gw.url, `/ws?token=${old}`)).status).to.equal(401);
      const fresh = await tokenIssuedAt('eve', Math.floor(Date.now() / 1000) + 1);
      expect((await fetch(`${gw.url}/poll?streams=d:2&timeout=0`, { headers: { Authorization: `Bearer ${fresh}` } })).status).to.equal(200);
      const otherSubject = await gw.token({ sub: 'eve2', streams: ['d:*'] });
      expect((await fetch(`${gw.url}/poll?streams=d:2&timeout=0`, { headers: { Authorization: `Bearer ${otherSubject}` } })).status).to.equal(200);
    });

    it('needs an API key and a subject', async () => {
      const token = await gw.token({ sub: 'bob', streams: ['*'] });
      await expectFetchError(await disconnect(gw, { sub: 'bob' }, token), 403, 'forbidden');
      await expectFetchError(await disconnect(gw, {}), 400, 'bad_request');
      await expectFetchError(await disconnect(gw, { sub: 'bob', revoke: 'yes' }), 400, 'bad_request');
      await expectFetchError(await disconnect(gw, [1]), 400, 'bad_request');
    });
  });

  describe('across nodes (Redis)', function () {
    this.timeout(20_000);
    let a: TestGateway;
    let b: TestGateway;
    let prefix: string;
    beforeEach(async () => {
      prefix = uniquePrefix();
      const redis = { url: (await sharedRedis()).url, keyPrefix: prefix };
      [a, b] = await Promise.all([startGateway({ redis, disconnect: { recheckMs: 300 } }), startGateway({ redis, disconnect: { recheckMs: 300 } })]);
    });
    afterEach(() => Promise.all([a.shutdown(), b.shutdown()]));

    it('closes a WebSocket on node B when node A is asked, within a second or two', async () => {
      const token = await a.token({ sub: 'bob', streams: ['x:*'] });
      const ws = await WsClient.open(b.url, { token });
      await ws.subscribe(['x:1']);
      const started = Date.now();
      expect((await disconnect(a, { sub: 'bob', revoke: true })).status).to.equal(200);
      expect((await ws.closed).code).to.equal(4403);
      const ms = Date.now() - started;
      process.stdout.write(`      disconnect A -> WebSocket on B closed in ${ms} ms\n`);
      expect(ms).to.be.below(2000);
      // B knows the revocation too.
      expect((await handshake(b.url, `/ws?token=${token}`)).status).to.equal(401);
    });

    it('still disconnects when the Pub/Sub message is lost: the re-check reads the record', async () => {
      const token = await a.token({ sub: 'lost', streams: ['x:*'] });
      const ws = await WsClient.open(b.url, { token });
      await ws.subscribe(['x:2']);
      // What publish() records, without the PUBLISH: as if the message was lost on the way to B.
      const admin = redisClient((await sharedRedis()).url);
      try {
        const at = Date.now();
        await admin.zadd(`${prefix}ctl:disconnects`, at, JSON.stringify({ sub: 'lost', at, until: at + 60_000 }));
      } finally {
        admin.disconnect();
      }
      expect((await ws.closed).code).to.equal(4403);
      expect((await handshake(b.url, `/ws?token=${token}`)).status).to.equal(401);
    });

    it('refuses a revoked token on a node started after the revoke', async () => {
      const token = await a.token({ sub: 'late', streams: ['x:*'] });
      await disconnect(a, { sub: 'late', revoke: true });
      const c = await startGateway({ redis: { url: (await sharedRedis()).url, keyPrefix: prefix } });
      try {
        await expectFetchError(await fetch(`${c.url}/poll?streams=x:3&timeout=0`, { headers: { Authorization: `Bearer ${token}` } }), 401, 'unauthorized');
      } finally {
        await c.shutdown();
      }
    });
  });

  describe('Disconnects (lib/disconnect.ts), an event heard late', () => {
    it('ends the sessions opened before it, and for a revoke those opened since with a token it revokes, not those with a newer token', async () => {
      const sessions = new Sessions();
      let apply!: (e: DisconnectEvent) => void;
      const bus: DisconnectBus = { publish: async () => {}, since: async () => [], listen: async (a) => void (apply = a), close: async () => {} };
      const disconnects = new Disconnects(sessions, bus, { revokeSeconds: 60, recheckMs: 60_000 }, createLogger('silent'));
      await disconnects.start();
      const kicked: string[] = [];
      // Asked 5 s ago on another node; this node hears it only now, and let sessions in meanwhile.
      const at = Date.now() - 5000;
      const oldToken = Math.floor(at / 1000) - 10;
      const newToken = Math.floor(at / 1000) + 2;
      sessions.open('bob', 'ws', ['a'], () => kicked.push('ws old token'), oldToken);
      sessions.open('bob', 'sse', ['a'], () => kicked.push('sse new token'), newToken);
      sessions.open('ann', 'poll', ['a'], () => kicked.push('ann'), oldToken);
      apply({ sub: 'bob', at, until: 0 });
      expect(kicked, 'a disconnect without revoke leaves sessions opened after it').to.deep.equal([]);
      apply({ sub: 'bob', at, until: Date.now() + 60_000 });
      expect(kicked).to.deep.equal(['ws old token']);
      expect(disconnects.isRevoked('bob', oldToken)).to.equal(true);
      expect(disconnects.isRevoked('bob', newToken)).to.equal(false);
      await disconnects.close();
    });
  });
});
