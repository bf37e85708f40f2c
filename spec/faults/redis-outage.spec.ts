/**
 * The gateway while its Redis is gone (killed) or frozen (SIGSTOP): fail fast, never lie, keep
 * parked polls, stay flat in memory, and recover by itself when Redis is back.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnGateway, TEST_API_KEY, type ChildGateway } from '../support/gateway.js';
import { poll, send, stats, untilParked } from '../support/http.js';
import { startRedisServer, type RedisServer } from '../support/redis.js';

const key = TEST_API_KEY;

async function timed<T>(op: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = Date.now();
  const value = await op();
  return { value, ms: Date.now() - started };
}

async function rawSend(url: string, body: unknown): Promise<{ status: number; retryAfter: string | null; json: any }> {
  const res = await fetch(`${url}/send`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), json: await res.json() };
}

describe('Redis outage', function () {
  this.timeout(40_000);
  let dir: string;
  let redis: RedisServer | undefined;
  let gw: ChildGateway | undefined;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pollgate-outage-'));
    redis = await startRedisServer({ dir, appendonly: true });
    gw = await spawnGateway({ REDIS_URL: redis.url, POLLGATE_REDIS_PREFIX: 'out:' });
  });
  afterEach(async () => {
    await gw?.kill();
    if (redis?.process?.signalCode === null) redis.process.kill('SIGCONT');
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function restartRedis(): Promise<void> {
    redis = await startRedisServer({ port: redis!.port, dir, appendonly: true });
  }

  async function untilSendOk(body: Record<string, unknown>): Promise<any> {
    for (;;) {
      const r = await rawSend(gw!.url, body);
      if (r.status === 200) return r.json;
      expect(r.status).to.equal(503);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  it('answers /send 503 with Retry-After within 2 s while Redis is down, never 200, and /readyz 503', async () => {
    await redis!.stop();
    for (let i = 0; i < 20; i++) {
      const { value, ms } = await timed(() => rawSend(gw!.url, { stream: 'o:1', data: i, id: `o-${i}` }));
      expect(value.status, JSON.stringify(value.json)).to.equal(503);
      expect(value.json.error.code).to.equal('store_unavailable');
      expect(Number(value.retryAfter)).to.be.at.least(1);
      expect(ms).to.be.below(2000);
    }
    const ready = await timed(() => fetch(`${gw!.url}/readyz`));
    expect(ready.value.status).to.equal(503);
    expect(ready.ms).to.be.below(2000);
  });

  it('still drains and exits 0 on SIGTERM while Redis is down', async () => {
    await redis!.stop();
    expect((await rawSend(gw!.url, { stream: 'd:1', data: 1 })).status).to.equal(503);
    const signalled = Date.now();
    gw!.process.kill('SIGTERM');
    expect(await gw!.exited).to.equal(0);
    // Generous: the point is that it exits at all (a quit queued for a Redis that is gone never ends).
    expect(Date.now() - signalled).to.be.below(10_000);
  });

  it('answers parked polls at their timeout with the cursor unchanged, and stays flat in memory', async () => {
    const starts = await Promise.all([1, 2, 3].map((i) => poll(gw!.url, key, { streams: `p:${i}`, timeout: 0 })));
    const parked = starts.map((s, i) => poll(gw!.url, key, { streams: `p:${i + 1}`, cursor: s.cursor, timeout: 3 }));
    await untilParked(gw!.url, key, 3);
    await redis!.stop();
    const answers = await Promise.all(parked);
    answers.forEach((a, i) => expect(a).to.deep.equal({ messages: [], cursor: starts[i]!.cursor }));

    // A burst of failing requests must not leave anything behind.
    const before = await stats(gw!.url, key);
    for (let round = 0; round < 10; round++) {
      await Promise.all(Array.from({ length: 50 }, (_, i) => rawSend(gw!.url, { stream: 'p:1', data: i })));
      await Promise.all(Array.from({ length: 20 }, () => fetch(`${gw!.url}/poll?streams=p:2&cursor=${starts[1]!.cursor}&timeout=1`).then((r) => r.text())));
    }
    const after = await stats(gw!.url, key);
    expect(after).to.include({ parkedPolls: 0, waiters: 0, subscribedStreams: 0 });
    expect((after.memory as { heapUsed: number }).heapUsed - (before.memory as { heapUsed: number }).heapUsed).to.be.below(30 * 1024 * 1024);
  });

  it('recovers without a restart when Redis returns: sends succeed, a poll parked across the outage receives', async () => {
    const start = await poll(gw!.url, key, { streams: 'r:1', timeout: 0 });
    await untilSendOk({ stream: 'r:1', data: 'before', id: 'before' });
    const first = await poll(gw!.url, key, { streams: 'r:1', cursor: start.cursor, timeout: 0 });
    const parked = poll(gw!.url, key, { streams: 'r:1', cursor: first.cursor, timeout: 30 });
    await untilParked(gw!.url, key, 1);
    await redis!.stop();
    expect((await rawSend(gw!.url, { stream: 'r:1', data: 'x' })).status).to.equal(503);
    await restartRedis();
    await untilSendOk({ stream: 'r:1', data: 'after', id: 'after' });
    // A restarted Redis starts a new epoch (it may have lost writes): a reset, then the retained log.
    const got = await parked;
    expect(got.resets).to.deep.equal(['r:1']);
    expect(got.messages.map((m) => m.data)).to.deep.equal(['before', 'after']);
    // AOF kept the message sent before the outage; a new poll reads through the same gateway.
    const all = await poll(gw!.url, key, { streams: 'r:1', since: 'earliest', timeout: 0 });
    expect(all.messages.map((m) => m.id)).to.deep.equal(['before', 'after']);
    expect((await fetch(`${gw!.url}/readyz`)).status).to.equal(200);
  });

  it('never acknowledges a send it did not store while Redis is frozen (SIGSTOP), and answers within the command timeout', async () => {
    const start = await poll(gw!.url, key, { streams: 'f:1', timeout: 0 });
    redis!.process!.kill('SIGSTOP');
    const sends = Array.from({ length: 10 }, (_, i) => timed(() => rawSend(gw!.url, { stream: 'f:1', data: i, id: `f-${i}` })));
    const results = await Promise.all(sends);
    redis!.process!.kill('SIGCONT');
    for (const { value, ms } of results) {
      expect(value.status).to.be.oneOf([200, 503]);
      if (value.status === 503) expect(value.retryAfter).to.not.equal(null);
      expect(ms).to.be.below(3000); // commandTimeoutMs 2000, whatever is queued before it, plus a busy CI
    }
    const acked = results.filter((r) => r.value.status === 200).map((r) => r.value.json.results[0].id);
    await untilSendOk({ stream: 'f:1', data: 'after', id: 'f-after' });
    const all = await poll(gw!.url, key, { streams: 'f:1', cursor: start.cursor, timeout: 0, limit: 100 });
    const stored = all.messages.map((m) => m.id);
    for (const id of acked) expect(stored).to.include(id);
    // A 503 during the freeze is indeterminate: a retry with the same id never stores it twice.
    for (let i = 0; i < 10; i++) await untilSendOk({ stream: 'f:1', data: i, id: `f-${i}` });
    const again = await poll(gw!.url, key, { streams: 'f:1', cursor: start.cursor, timeout: 0, limit: 100 });
    expect(new Set(again.messages.map((m) => m.id)).size).to.equal(again.messages.length);
    expect(again.messages).to.have.length(11);
  });
});
