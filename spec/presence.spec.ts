/**
 * Presence (lib/presence.ts): GET /presence lists who reads a stream on every transport; join and
 * leave events go to `<stream>@presence`; a long-polling subject stays present for its grace after
 * an answer; across two gateway processes on one Redis either node sees both nodes' clients, and
 * the clients of a node killed with SIGKILL are gone once its heartbeat expired.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { spawnGateway, startGateway, TEST_API_KEY, TEST_SECRET, type ChildGateway, type TestGateway } from './support/gateway.js';
import { SseClient, WsClient } from './support/clients.js';
import { expectFetchError, poll } from './support/http.js';
import { loadPollgate, makeNet, until as untilClient } from './support/node-client.js';
import { sharedRedis, uniquePrefix } from './support/redis.js';
import { Auth } from '../lib/auth.js';

interface Presence {
  stream: string;
  subjects: { sub: string; connections: number }[];
  count: number;
}

async function presence(url: string, stream: string, credential = TEST_API_KEY): Promise<Presence> {
  const res = await fetch(`${url}/presence?stream=${stream}`, { headers: { Authorization: `Bearer ${credential}` } });
  expect(res.status, await res.clone().text()).to.equal(200);
  return (await res.json()) as Presence;
}

/** Asks until `check` holds for the answer (presence changes land asynchronously in Redis); returns it. */
async function presenceUntil(url: string, stream: string, check: (p: Presence) => boolean, ms = 10_000): Promise<Presence> {
  const end = Date.now() + ms;
  for (;;) {
    const p = await presence(url, stream);
    if (check(p)) return p;
    if (Date.now() > end) throw new Error(`presence of ${stream} never matched: ${JSON.stringify(p)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const subs = (p: Presence) => Object.fromEntries(p.subjects.map((s) => [s.sub, s.connections]));

/** The join/leave events of `stream` so far, read from `<stream>@presence`. */
async function events(url: string, stream: string): Promise<string[]> {
  const r = await poll(url, TEST_API_KEY, { streams: `${stream}@presence`, since: 'earliest', timeout: 0 });
  return r.messages.map((m: any) => `${m.data.type}:${m.data.sub}`);
}

const PRESENCE = { streams: ['p:*'], joinLeave: ['p:*'] };

describe('presence', () => {
  describe('on one node (memory store)', () => {
    let gw: TestGateway;
    const closers: Array<() => unknown> = [];
    beforeEach(async () => {
      gw = await startGateway({ presence: { ...PRESENCE, pollGraceSeconds: 0.3 } });
    });
    afterEach(async () => {
      for (const c of closers.splice(0)) await c();
      await gw.shutdown();
    });

    it('lists each subject reading a stream over WebSocket, SSE or a parked poll, counting its connections, with join and leave events', async () => {
      const [ann, bob, cat] = await Promise.all(['ann', 'bob', 'cat'].map((sub) => gw.token({ sub, streams: ['p:*'] })));
      const ws1 = await WsClient.open(gw.url, { token: ann! });
      await ws1.subscribe(['p:1']);
      const ws2 = await WsClient.open(gw.url, { token: ann! });
      await ws2.subscribe(['p:1', 'p:other']);
      const es = new SseClient(`${gw.url}/sse?streams=p:1&token=${bob}`);
      closers.push(() => es.close());
      await es.next('ready');
      const ctl = new AbortController();
      const parked = fetch(`${gw.url}/poll?streams=p:1&timeout=20&conn=x`, { headers: { Authorization: `Bearer ${cat}` }, signal: ctl.signal }).catch(() => undefined);
      closers.push(() => ctl.abort());
      const p = await presenceUntil(gw.url, 'p:1', (x) => x.count === 3);
      expect(p).to.deep.equal({ stream: 'p:1', subjects: [{ sub: 'ann', connections: 2 }, { sub: 'bob', connections: 1 }, { sub: 'cat', connections: 1 }], count: 3 });
      ws1.send({ type: 'unsubscribe', streams: ['p:1'], ref: 'u' });
      await ws1.reply('u');
      expect(subs(await presence(gw.url, 'p:1')).ann).to.equal(1);
      await ws2.close();
      await ws1.close();
      es.close();
      await presenceUntil(gw.url, 'p:1', (x) => x.count === 1);
      expect(await events(gw.url, 'p:1')).to.deep.equal(['join:ann', 'join:bob', 'join:cat', 'leave:ann', 'leave:bob']);
      ctl.abort();
      await parked;
      // The long-poll session ends once its grace (0.3 s) passed without another poll.
      await presenceUntil(gw.url, 'p:1', (x) => x.count === 0);
      expect((await events(gw.url, 'p:1')).at(-1)).to.equal('leave:cat');
    });

    it('keeps a long-polling subject present while it polls again within the grace', async () => {
      const dan = await gw.token({ sub: 'dan', streams: ['p:*'] });
      const pollOnce = () => fetch(`${gw.url}/poll?streams=p:2&timeout=0&conn=d`, { headers: { Authorization: `Bearer ${dan}` } }).then((r) => r.json());
      await pollOnce();
      for (let i = 0; i < 4; i++) {
        await new Promise((r) => setTimeout(r, 100));
        await pollOnce();
        expect((await presence(gw.url, 'p:2')).count).to.equal(1);
      }
      expect(await events(gw.url, 'p:2')).to.deep.equal(['join:dan']);
    });

    it('answers 400 for a stream whose presence is not kept, 403 to a token that may not read it', async () => {
      await expectFetchError(await fetch(`${gw.url}/presence?stream=q:1`, { headers: { Authorization: `Bearer ${TEST_API_KEY}` } }), 400, 'bad_request');
      const other = await gw.token({ sub: 'x', streams: ['room:*'] });
      await expectFetchError(await fetch(`${gw.url}/presence?stream=p:1`, { headers: { Authorization: `Bearer ${other}` } }), 403, 'forbidden');
    });

    it('gives the browser client pg.presence(stream, cb)', async () => {
      const ann = await gw.token({ sub: 'ann', streams: ['p:*'] });
      const ws = await WsClient.open(gw.url, { token: ann });
      closers.push(() => ws.close());
      await ws.subscribe(['p:3']);
      const Pollgate = loadPollgate(makeNet());
      const pg = new Pollgate({ url: gw.url, token: ann, streams: ['p:4'], transport: 'polling', autoConnect: false });
      closers.push(() => pg.close());
      let result: Presence | undefined;
      pg.presence('p:3', (err: unknown, r: Presence) => (result = err ? undefined : r));
      await untilClient('presence answer', () => result);
      expect(result).to.deep.equal({ stream: 'p:3', subjects: [{ sub: 'ann', connections: 1 }], count: 1 });
    });
  });

  describe('across two gateway processes on one Redis', function () {
    this.timeout(30_000);
    let a: ChildGateway;
    let b: ChildGateway;
    let dir: string;
    const closers: Array<() => unknown> = [];

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'pollgate-presence-'));
      const config = join(dir, 'config.json');
      writeFileSync(config, JSON.stringify({ presence: { ...PRESENCE, heartbeatSeconds: 0.5, ttlSeconds: 2, pollGraceSeconds: 5 } }));
      const env = { REDIS_URL: (await sharedRedis()).url, POLLGATE_REDIS_PREFIX: uniquePrefix(), POLLGATE_CONFIG: config };
      [a, b] = await Promise.all([spawnGateway(env), spawnGateway(env)]);
    });
    after(async () => {
      for (const c of closers.splice(0)) await c();
      await Promise.all([a?.kill(), b?.kill()]);
      rmSync(dir, { recursive: true, force: true });
    });

    it('shows a long-poll subject on A and WebSocket and SSE subjects on B from either node; B\'s vanish after kill -9, with leave events', async () => {
      const auth = new Auth({ secret: TEST_SECRET, apiKeys: [TEST_API_KEY], clockToleranceSeconds: 30 });
      const [poller, socket, stream] = await Promise.all(['poller', 'socket', 'streamer'].map((sub) => auth.mintToken({ sub, streams: ['p:*'], ttlSeconds: 600 })));
      const ctl = new AbortController();
      closers.push(() => ctl.abort());
      void fetch(`${a.url}/poll?streams=p:x&timeout=25&conn=z`, { headers: { Authorization: `Bearer ${poller}` }, signal: ctl.signal }).catch(() => undefined);
      const ws = await WsClient.open(b.url, { token: socket });
      closers.push(() => ws.close());
      await ws.subscribe(['p:x']);
      const es = new SseClient(`${b.url}/sse?streams=p:x&token=${stream}`);
      closers.push(() => es.close());
      await es.next('ready');
      const all = { poller: 1, socket: 1, streamer: 1 };
      expect(subs(await presenceUntil(a.url, 'p:x', (p) => p.count === 3))).to.deep.equal(all);
      expect(subs(await presenceUntil(b.url, 'p:x', (p) => p.count === 3))).to.deep.equal(all);
      const killed = Date.now();
      await b.kill();
      const left = await presenceUntil(a.url, 'p:x', (p) => p.count === 1, 10_000);
      const ms = Date.now() - killed;
      process.stdout.write(`      presence of a SIGKILLed node gone after ${ms} ms (heartbeat 0.5 s, ttl 2 s)\n`);
      expect(subs(left)).to.deep.equal({ poller: 1 });
      expect(ms).to.be.below(2000 + 1500);
      const seen = await (async () => {
        const end = Date.now() + 5000;
        for (;;) {
          const e = await events(a.url, 'p:x');
          if (e.includes('leave:socket') && e.includes('leave:streamer')) return e;
          if (Date.now() > end) return e;
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
      expect(seen.filter((e) => e.startsWith('join:')).sort()).to.deep.equal(['join:poller', 'join:socket', 'join:streamer']);
      expect(seen.filter((e) => e.startsWith('leave:')).sort()).to.deep.equal(['leave:socket', 'leave:streamer']);
    });
  });
});
