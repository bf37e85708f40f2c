/**
 * A Redis restart that lost its newest writes (appendfsync everysec, a snapshot, a lagging
 * replica): seqs must not be reused under the epoch clients already hold. The loss is made
 * deterministic with a snapshot: SAVE, write more, SIGKILL, restart from the snapshot.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { poll, sendOk } from '../support/http.js';
import { redisClient, startRedisServer, type RedisServer } from '../support/redis.js';

describe('Redis restarted with its newest writes lost', function () {
  this.timeout(30_000);
  let dir: string;
  let redis: RedisServer | undefined;
  let gw: TestGateway | undefined;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pollgate-restart-'));
    redis = await startRedisServer({ dir });
    gw = await startGateway({ redis: { url: redis.url, keyPrefix: 'rs:' } });
  });
  afterEach(async () => {
    await gw?.shutdown();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function restartFromSnapshot(): Promise<void> {
    const port = redis!.port;
    await redis!.stop();
    redis = await startRedisServer({ port, dir });
  }

  async function sendAfterRestart(data: string): Promise<number> {
    // The gateway reconnects by itself; until it has, sends answer 503.
    for (;;) {
      const r = await fetch(`${gw!.url}/send`, {
        method: 'POST',
        headers: { authorization: `Bearer ${gw!.apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ stream: 'lost:1', data, id: data }),
      });
      if (r.status === 200) return ((await r.json()) as { results: { seq: number }[] }).results[0]!.seq;
      expect(r.status).to.equal(503);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  it('reports a reset to a client that saw lost messages, and delivers every later message', async () => {
    const start = await poll(gw!.url, gw!.apiKey, { streams: 'lost:1', timeout: 0 });
    for (const d of ['m1', 'm2', 'm3']) await sendOk(gw!.url, gw!.apiKey, { stream: 'lost:1', data: d, id: d });
    const admin = redisClient(redis!.url);
    await admin.save();
    admin.disconnect();
    for (const d of ['m4', 'm5']) await sendOk(gw!.url, gw!.apiKey, { stream: 'lost:1', data: d, id: d });
    const seen = await poll(gw!.url, gw!.apiKey, { streams: 'lost:1', cursor: start.cursor, timeout: 0 });
    expect(seen.messages.map((m) => m.seq)).to.deep.equal([1, 2, 3, 4, 5]);

    await restartFromSnapshot();
    // Three new messages: without a new epoch they would take seqs 4, 5, 6 and the client at 5
    // would get only the last one, with no word of the two it skipped.
    const seqs = [];
    for (const d of ['n1', 'n2', 'n3']) seqs.push(await sendAfterRestart(d));
    expect(seqs).to.deep.equal([4, 5, 6]);

    const after = await poll(gw!.url, gw!.apiKey, { streams: 'lost:1', cursor: seen.cursor, timeout: 0 });
    expect(after.resets).to.deep.equal(['lost:1']);
    expect(after.messages.map((m) => m.data)).to.deep.equal(['m1', 'm2', 'm3', 'n1', 'n2', 'n3']);
  });

  it('tells a client that had not seen the lost messages of the reset too (its cursor is of the old epoch)', async () => {
    const start = await poll(gw!.url, gw!.apiKey, { streams: 'lost:1', timeout: 0 });
    await sendOk(gw!.url, gw!.apiKey, { stream: 'lost:1', data: 'm1', id: 'm1' });
    const seen = await poll(gw!.url, gw!.apiKey, { streams: 'lost:1', cursor: start.cursor, timeout: 0 });
    const admin = redisClient(redis!.url);
    await admin.save();
    admin.disconnect();
    await sendOk(gw!.url, gw!.apiKey, { stream: 'lost:1', data: 'm2', id: 'm2' });
    await restartFromSnapshot();
    await sendAfterRestart('n1');
    const after = await poll(gw!.url, gw!.apiKey, { streams: 'lost:1', cursor: seen.cursor, timeout: 0 });
    expect(after.resets).to.deep.equal(['lost:1']);
    expect(after.messages.map((m) => m.data)).to.deep.equal(['m1', 'n1']);
  });

  it('keeps the idempotency window across the restart: a retried send that survived is not stored twice', async () => {
    await sendOk(gw!.url, gw!.apiKey, { stream: 'lost:1', data: 'm1', id: 'm1' });
    const admin = redisClient(redis!.url);
    await admin.save();
    admin.disconnect();
    await restartFromSnapshot();
    await sendAfterRestart('m1');
    const all = await poll(gw!.url, gw!.apiKey, { streams: 'lost:1', since: 'earliest', timeout: 0 });
    expect(all.messages.map((m) => m.id)).to.deep.equal(['m1']);
  });

  it('keeps the epoch while the same Redis process serves the stream', async () => {
    const start = await poll(gw!.url, gw!.apiKey, { streams: 'lost:1', timeout: 0 });
    await sendOk(gw!.url, gw!.apiKey, { stream: 'lost:1', data: 'a' });
    const first = await poll(gw!.url, gw!.apiKey, { streams: 'lost:1', cursor: start.cursor, timeout: 0 });
    await sendOk(gw!.url, gw!.apiKey, { stream: 'lost:1', data: 'b' });
    const second = await poll(gw!.url, gw!.apiKey, { streams: 'lost:1', cursor: first.cursor, timeout: 0 });
    expect(second.resets).to.equal(undefined);
    expect(second.messages.map((m) => m.data)).to.deep.equal(['b']);
  });
});
