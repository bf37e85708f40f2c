/**
 * Shutdown and churn at scale, on real child processes: SIGTERM with ~2000 parked polls, 100
 * WebSockets, 100 SSE streams and a send still uploading, and clients that vanish with a TCP reset
 * while parked.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request, Agent, type ClientRequest } from 'node:http';
import { spawnGateway, TEST_API_KEY, type ChildGateway } from '../support/gateway.js';
import { poll, sendOk, stats, untilParked } from '../support/http.js';
import { sharedRedis, uniquePrefix } from '../support/redis.js';
import { LiveSse, LiveWs } from './live-clients.js';

const PARKED = 2000;
/** WebSockets, and as many SSE streams, open during the SIGTERM. */
const LIVE = 100;
/** The gateway's default server.shutdownGraceMs. */
const GRACE_MS = 10_000;
/** A message id for a stream name (ids allow no colon). */
const idOf = (stream: string) => stream.replace(':', '-');

/** A parked GET /poll over its own socket; resolves with status and body when answered. */
function rawPoll(port: number, path: string, agent: Agent): { req: ClientRequest; answer: Promise<{ status: number; body: string; at: number }> } {
  const req = request({ host: '127.0.0.1', port, path, agent, headers: { authorization: `Bearer ${TEST_API_KEY}` } });
  const answer = new Promise<{ status: number; body: string; at: number }>((resolve, reject) => {
    req.on('response', (res) => {
      // When the answer's head arrived: the body is tiny, and its parsing is the test's own delay.
      const at = Date.now();
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body, at }));
    });
    req.on('error', reject);
  });
  req.end();
  return { req, answer };
}

describe('at scale', function () {
  // Every poll here comes from 127.0.0.1: lift the per-IP caps and rates this test is not about.
  let configDir: string;
  let UNCAPPED: string;
  before(() => {
    configDir = mkdtempSync(join(tmpdir(), 'pollgate-scale-'));
    UNCAPPED = join(configDir, 'config.json');
    writeFileSync(UNCAPPED, JSON.stringify({ limits: { parkedPerIp: 1_000_000 }, rateLimits: { pollsPerIpPerSecond: 0 } }));
  });
  after(() => rmSync(configDir, { recursive: true, force: true }));
  this.timeout(90_000);
  let gw: ChildGateway | undefined;
  let other: ChildGateway | undefined;
  let env: Record<string, string>;
  let agent: Agent;
  const live: { ws: LiveWs[]; sse: LiveSse[] } = { ws: [], sse: [] };
  beforeEach(async () => {
    agent = new Agent({ keepAlive: false, maxSockets: Infinity });
    const redis = await sharedRedis();
    env = { REDIS_URL: redis.url, POLLGATE_REDIS_PREFIX: uniquePrefix(), POLLGATE_CONFIG: UNCAPPED };
    // --expose-gc: GET /stats?gc=1 then measures the heap after a collection.
    gw = await spawnGateway(env, [], ['--expose-gc']);
  });
  afterEach(async () => {
    [...live.ws, ...live.sse].forEach((c) => c.close());
    live.ws = [];
    live.sse = [];
    await Promise.all([gw?.kill(), other?.kill()]);
    other = undefined;
    agent.destroy();
  });

  it(`SIGTERM with ${PARKED} parked polls, ${LIVE} WebSockets and ${LIVE} SSE streams: polls answered at once with their cursors unchanged, sockets closed 1001, streams ended, the upload in flight finishes, exit 0 before the grace, clients resume elsewhere losing nothing`, async () => {
    const streams = Array.from({ length: 50 }, (_, i) => `big:${i}`);
    const starts = await Promise.all(streams.map((s) => poll(gw!.url, TEST_API_KEY, { streams: s, timeout: 0 })));
    // In waves of 200: 2000 simultaneous connects overflow the listen backlog on a busy CI machine.
    const polls: { cursor: string; req: ClientRequest; answer: Promise<{ status: number; body: string; at: number }> }[] = [];
    while (polls.length < PARKED) {
      for (let k = 0; k < 200; k++) {
        const s = polls.length % streams.length;
        polls.push({ cursor: starts[s]!.cursor, ...rawPoll(gw!.port, `/poll?streams=${streams[s]}&cursor=${starts[s]!.cursor}&timeout=50`, agent) });
      }
      await untilParked(gw!.url, TEST_API_KEY, polls.length, 30_000);
    }

    // Live clients, each holding a cursor past one message, in waves like the polls.
    const liveStreams = Array.from({ length: 10 }, (_, i) => `live:${i}`);
    for (const s of liveStreams) await sendOk(gw!.url, TEST_API_KEY, { stream: s, data: 'before', id: `before-${idOf(s)}` });
    for (let i = 0; i < LIVE; i += 50) {
      const wave = Array.from({ length: 50 }, (_, k) => liveStreams[(i + k) % liveStreams.length]!);
      const ws = wave.map((s) => new LiveWs(gw!.port, TEST_API_KEY, s));
      const sse = wave.map((s) => new LiveSse(gw!.port, TEST_API_KEY, s, agent));
      live.ws.push(...ws);
      live.sse.push(...sse);
      await Promise.all([...ws.map((c) => c.subscribed), ...sse.map((c) => c.ready)]);
    }
    expect(live.sse.map((c) => c.events.join(','))).to.deep.equal(live.sse.map(() => 'message,ready'));
    const cursors = { ws: live.ws.map((c) => c.cursor), sse: live.sse.map((c) => c.cursor) };

    // A send whose body is still arriving when the signal comes.
    const body = JSON.stringify({ stream: 'big:0', data: 'x'.repeat(1000), id: 'in-flight' });
    const upload = request({ host: '127.0.0.1', port: gw!.port, path: '/send', method: 'POST', agent, headers: { authorization: `Bearer ${TEST_API_KEY}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } });
    const uploaded = new Promise<{ status: number; body: string }>((resolve, reject) => {
      upload.on('response', (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode!, body: text }));
      });
      upload.on('error', reject);
    });
    upload.write(body.slice(0, 100));
    await new Promise((r) => upload.once('socket', (s) => (s.connecting ? s.once('connect', r) : r(undefined))));

    const signalled = Date.now();
    gw!.process.kill('SIGTERM');
    const answers = await Promise.all(polls.map((p) => p.answer));
    const slowest = Math.max(...answers.map((a) => a.at)) - signalled;
    // Target 1 s (met alone: ~0.5-1 s). Measured in the client's own event loop on a shared 2-core
    // machine, 2000 answers have arrived up to 2.6 s after the signal under heavy load: the margin
    // is generous (the sharp checks are the cursors and the exit code); the bench measures speed.
    expect(slowest, 'the last parked poll was answered after (ms)').to.be.below(8000);
    answers.forEach((a, i) => {
      expect(a.status).to.equal(200);
      expect(JSON.parse(a.body)).to.deep.equal({ messages: [], cursor: polls[i]!.cursor });
    });
    // Every WebSocket closed with 1001 and every event stream finished (not cut), nothing sent during the drain.
    expect(await Promise.all(live.ws.map((c) => c.closed))).to.deep.equal(live.ws.map(() => 1001));
    expect(await Promise.all(live.sse.map((c) => c.ended))).to.deep.equal(live.sse.map(() => 'end'));
    expect(live.ws.map((c) => c.cursor)).to.deep.equal(cursors.ws);
    expect(live.ws.reduce((n, c) => n + c.lateFrames, 0)).to.equal(0);
    expect(live.sse.map((c) => c.cursor)).to.deep.equal(cursors.sse);
    upload.end(body.slice(100));
    const sent = await uploaded;
    expect(sent.status, sent.body).to.equal(200);
    expect(await gw!.exited).to.equal(0);
    expect(Date.now() - signalled).to.be.below(GRACE_MS);

    // Resume every live client on another node from its last cursor: exactly the next message.
    other = await spawnGateway(env);
    for (const s of liveStreams) await sendOk(other.url, TEST_API_KEY, { stream: s, data: 'after', id: `after-${idOf(s)}` });
    const streamOf = (client: number) => liveStreams[client % LIVE % liveStreams.length]!;
    const resumed = await Promise.all([...cursors.ws, ...cursors.sse].map((cursor, i) => poll(other!.url, TEST_API_KEY, { streams: streamOf(i), cursor, timeout: 0 })));
    resumed.forEach((r, i) => expect(r.messages.map((m) => m.id), `client ${i}`).to.deep.equal([`after-${idOf(streamOf(i))}`]));
  });

  it('leaves no waiter, subscription or heap behind when parked clients vanish with a TCP reset', async () => {
    const round = async (n: number) => {
      const polls = Array.from({ length: n }, (_, i) => rawPoll(gw!.port, `/poll?streams=churn:${i % 100}&timeout=50`, agent));
      polls.forEach((p) => p.answer.catch(() => {}));
      await untilParked(gw!.url, TEST_API_KEY, n, 30_000);
      for (const p of polls) p.req.socket?.resetAndDestroy();
      const deadline = Date.now() + 10_000;
      let s = await stats(gw!.url, TEST_API_KEY);
      while (s.parkedPolls + s.waiters + s.subscribedStreams > 0) {
        if (Date.now() > deadline) throw new Error(`left behind: ${JSON.stringify(s)}`);
        await new Promise((r) => setTimeout(r, 20));
        s = await stats(gw!.url, TEST_API_KEY);
      }
      return s;
    };
    await round(500); // warm-up: code paths compiled, pools grown
    // Live heap, collected first: without it the heap wobbled by tens of MB (one run measured 42.9 MB).
    const collected = async () => (await (await fetch(`${gw!.url}/stats?gc=1`, { headers: { authorization: `Bearer ${TEST_API_KEY}` } })).json()) as Awaited<ReturnType<typeof stats>>;
    const before = await collected();
    for (let i = 0; i < 4; i++) await round(500);
    const after = await collected();
    expect(after).to.include({ parkedPolls: 0, waiters: 0, subscribedStreams: 0 });
    const grown = (after.memory as { heapUsed: number }).heapUsed - (before.memory as { heapUsed: number }).heapUsed;
    // A generous margin still; the counts above are the sharp check.
    expect(grown, 'heap growth after 2000 vanished clients (bytes)').to.be.below(40 * 1024 * 1024);
  });
});
