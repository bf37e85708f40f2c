/**
 * Shutdown and churn at scale, on real child processes: SIGTERM with ~2000 parked polls and a
 * send still uploading, and clients that vanish with a TCP reset while parked.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request, Agent, type ClientRequest } from 'node:http';
import { spawnGateway, TEST_API_KEY, type ChildGateway } from '../support/gateway.js';
import { poll, stats, untilParked } from '../support/http.js';
import { sharedRedis, uniquePrefix } from '../support/redis.js';

const PARKED = 2000;

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
  let agent: Agent;
  beforeEach(async () => {
    agent = new Agent({ keepAlive: false, maxSockets: Infinity });
    const redis = await sharedRedis();
    gw = await spawnGateway({ REDIS_URL: redis.url, POLLGATE_REDIS_PREFIX: uniquePrefix(), POLLGATE_CONFIG: UNCAPPED });
  });
  afterEach(async () => {
    await gw?.kill();
    agent.destroy();
  });

  it(`SIGTERM with ${PARKED} parked polls: every one answered at once with its cursor unchanged, the upload in flight finishes, exit 0 before the grace`, async () => {
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
    expect(slowest, 'the last parked poll was answered after (ms)').to.be.below(6000);
    answers.forEach((a, i) => {
      expect(a.status).to.equal(200);
      expect(JSON.parse(a.body)).to.deep.equal({ messages: [], cursor: polls[i]!.cursor });
    });
    upload.end(body.slice(100));
    const sent = await uploaded;
    expect(sent.status, sent.body).to.equal(200);
    expect(await gw!.exited).to.equal(0);
    expect(Date.now() - signalled).to.be.below(10_000);
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
    const before = await stats(gw!.url, TEST_API_KEY);
    for (let i = 0; i < 4; i++) await round(500);
    const after = await stats(gw!.url, TEST_API_KEY);
    expect(after).to.include({ parkedPolls: 0, waiters: 0, subscribedStreams: 0 });
    const grown = (after.memory as { heapUsed: number }).heapUsed - (before.memory as { heapUsed: number }).heapUsed;
    // Without a forced GC the heap wobbles by tens of MB: a generous margin; the counts above are the sharp check.
    expect(grown, 'heap growth after 2000 vanished clients (bytes)').to.be.below(40 * 1024 * 1024);
  });
});
