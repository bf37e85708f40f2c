/**
 * redis.ackDurability: a 200 from /send waits for replicas (WAIT) or the AOF fsync (WAITAOF), and
 * a confirmation that falls short is a 503 (the message is stored, its outcome indeterminate). On
 * a Redis Cluster the WAIT runs on the connection that ran the append, to the stream's master.
 */
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { loadConfig } from '../../lib/config.js';
import { streamSlot } from '../../lib/store/redis-keys.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { send } from '../support/http.js';
import { commandCalls, migrateSlot, nodeClient, ownerOf, shards, sharedRedisCluster, type RedisCluster } from '../support/redis-cluster.js';
import { startRedisServer, uniquePrefix, type RedisServer } from '../support/redis.js';
import { waitFor } from '../support/wait.js';

describe('redis.ackDurability', function () {
  this.timeout(30_000);

  describe('config', () => {
    const load = (redis: Record<string, unknown>) => () => loadConfig({ env: {}, files: false, overrides: { redis } as never });

    it('reads POLLGATE_REDIS_ACK_DURABILITY and defaults to none', () => {
      expect(loadConfig({ env: {}, files: false }).redis).to.include({ ackDurability: 'none', ackReplicas: 1, ackTimeoutMs: 500 });
      expect(loadConfig({ env: { POLLGATE_REDIS_ACK_DURABILITY: 'replicas' }, files: false }).redis.ackDurability).to.equal('replicas');
    });

    it('refuses an ack timeout that does not fit in the command timeout, and takes acks with a cluster', () => {
      expect(load({ ackDurability: 'replicas', ackTimeoutMs: 2000, commandTimeoutMs: 2000 })).to.throw(/redis.ackTimeoutMs must be below redis.commandTimeoutMs/);
      expect(load({ ackDurability: 'replicas', cluster: true })).not.to.throw();
      expect(load({ ackDurability: 'fsync' })).to.throw(/redis.ackDurability/);
    });
  });

  describe('with a replica', () => {
    let primary: RedisServer;
    let replica: RedisServer;
    let gw: TestGateway;

    before(async () => {
      primary = await startRedisServer({ appendonly: true });
      replica = await startRedisServer({ extraArgs: ['--replicaof', '127.0.0.1', String(primary.port)] });
      const admin = new Redis(primary.url);
      try {
        let info = '';
        await waitFor(() => (void admin.info('replication').then((i) => (info = i)), /^slave0:.*state=online/m.test(info)), 'the replica to come online');
      } finally {
        admin.disconnect();
      }
      // A generous wait: on a loaded 2-core machine a healthy replica's ack has taken over 300 ms.
      gw = await startGateway({ redis: { url: primary.url, keyPrefix: 'ack:', ackDurability: 'replicas', ackTimeoutMs: 1500, commandTimeoutMs: 4000 } });
    });
    after(async () => {
      await gw?.shutdown();
      replica?.process?.kill('SIGCONT');
      await replica?.stop();
      await primary?.stop();
    });

    it('answers 200 once the replica has the message', async () => {
      const r = await send(gw.url, gw.apiKey, { stream: 'a:1', data: 1, id: 'one' });
      expect(r.status).to.equal(200);
      const copy = new Redis(replica.url);
      try {
        expect(await copy.llen('ack:{a:1}:log')).to.equal(1);
      } finally {
        copy.disconnect();
      }
    });

    it('answers 503 with Retry-After when the replica does not confirm in time, and a retry with the same id stores nothing twice', async () => {
      replica.process!.kill('SIGSTOP');
      const started = Date.now();
      const r = await send(gw.url, gw.apiKey, { stream: 'a:2', data: 2, id: 'two' });
      expect(r.status).to.equal(503);
      expect(r.json.error.code).to.equal('store_unavailable');
      expect(Date.now() - started).to.be.below(4000);
      replica.process!.kill('SIGCONT');
      const again = await send(gw.url, gw.apiKey, { stream: 'a:2', data: 2, id: 'two' });
      expect(again.status).to.equal(200);
      expect(again.json.results[0]).to.include({ seq: 1, duplicate: true });
    });

    it('confirms concurrent sends with shared WAITs', async () => {
      const rs = await Promise.all(Array.from({ length: 50 }, (_, i) => send(gw.url, gw.apiKey, { stream: 'a:3', data: i })));
      expect(rs.map((r) => r.status)).to.deep.equal(rs.map(() => 200));
    });
  });

  describe('on a Redis Cluster (replicas)', () => {
    let cluster: RedisCluster;
    let gw: TestGateway;
    const keyPrefix = uniquePrefix();

    before(async function () {
      this.timeout(60_000);
      cluster = await sharedRedisCluster();
      gw = await startGateway({ redis: { url: cluster.url, cluster: true, keyPrefix, ackDurability: 'replicas', ackTimeoutMs: 500, commandTimeoutMs: 2000 } });
    });
    after(async () => gw?.shutdown());

    it('waits on the master that owns the stream\'s slot, and its replica has the message at the 200', async () => {
      const streams = Array.from({ length: 6 }, (_, i) => `ca:${i}`);
      const owners = await Promise.all(streams.map((s) => ownerOf(cluster.nodes[0]!.port, streamSlot(s))));
      expect(new Set(owners.map((o) => o.port)).size, 'the streams should cover every master').to.equal(3);
      for (const [i, stream] of streams.entries()) {
        const masters = await shards(cluster.nodes[0]!.port);
        const before = await Promise.all(masters.map((m) => commandCalls(m.port, ['wait'])));
        const r = await send(gw.url, gw.apiKey, { stream, data: i, id: `m${i}` });
        expect(r.status).to.equal(200);
        const after = await Promise.all(masters.map((m) => commandCalls(m.port, ['wait'])));
        const waits = masters.map((m, k) => [m.port, after[k]!.wait! - before[k]!.wait!]);
        expect(waits, `WAIT calls per master for ${stream}`).to.deep.equal(masters.map((m) => [m.port, m.port === owners[i]!.port ? 1 : 0]));
        const replica = nodeClient(owners[i]!.replicas[0]!);
        try {
          await replica.call('READONLY');
          expect(await replica.llen(`${keyPrefix}{${stream}}:log`), `${stream} on its master's replica`).to.equal(1);
        } finally {
          replica.disconnect();
        }
      }
    });

    it('answers 503 when the replica of the stream\'s master does not confirm in time, and 200 for a retry once it does', async () => {
      const stream = 'ca:late';
      const owner = await ownerOf(cluster.nodes[0]!.port, streamSlot(stream));
      const replica = cluster.nodes.find((n) => n.port === owner.replicas[0])!;
      // Far below cluster-node-timeout (2 s): the cluster does not notice the pause.
      replica.process!.kill('SIGSTOP');
      let r: Awaited<ReturnType<typeof send>>;
      try {
        r = await send(gw.url, gw.apiKey, { stream, data: 1, id: 'late' });
      } finally {
        replica.process!.kill('SIGCONT');
      }
      expect(r.status).to.equal(503);
      expect(r.json.error.code).to.equal('store_unavailable');
      const again = await send(gw.url, gw.apiKey, { stream, data: 1, id: 'late' });
      expect(again.status).to.equal(200);
      expect(again.json.results[0]).to.include({ seq: 1, duplicate: true });
    });

    it('follows a slot migration: runs the append where ASK and MOVED send it and waits there', async () => {
      const stream = 'ca:moving';
      const slot = streamSlot(stream);
      expect((await send(gw.url, gw.apiKey, { stream, data: 0, id: 'm0' })).status).to.equal(200);
      const all = await shards(cluster.nodes[0]!.port);
      const from = all.find((m) => m.ranges.some(([lo, hi]) => slot >= lo && slot <= hi))!;
      const to = all.find((m) => m !== from)!;
      const waits = async () => (await commandCalls(to.port, ['wait'])).wait!;
      const before = await waits();
      // The gateway's slot map could learn the move on its own (a refresh): hold it at the old owner.
      const slots = (gw.store as unknown as { cmd: { slots: string[][] } }).cmd.slots;
      const staleMap = () => (slots[slot] = [`127.0.0.1:${from.port}`]);
      await migrateSlot(slot, from, to, all.filter((m) => m !== from && m !== to), {
        afterKeysMoved: async () => {
          // The keys are gone from the old owner, which is still migrating the slot: it answers ASK.
          staleMap();
          expect((await send(gw.url, gw.apiKey, { stream, data: 1, id: 'm1' })).status).to.equal(200);
        },
      });
      expect(await waits(), 'the WAIT after the ASKed append').to.equal(before + 1);
      // The old owner now answers MOVED.
      staleMap();
      expect((await send(gw.url, gw.apiKey, { stream, data: 2, id: 'm2' })).status).to.equal(200);
      expect(await waits(), 'the WAIT after the MOVED append').to.equal(before + 2);
      const r = await send(gw.url, gw.apiKey, { stream, data: 1, id: 'm1' });
      expect(r.json.results[0]).to.include({ seq: 2, duplicate: true });
    });

    it('confirms concurrent sends to streams on every master with shared WAITs', async () => {
      const rs = await Promise.all(Array.from({ length: 60 }, (_, i) => send(gw.url, gw.apiKey, { stream: `cc:${i % 6}`, data: i })));
      expect(rs.map((r) => r.status)).to.deep.equal(rs.map(() => 200));
    });
  });

  it('refuses to start with "aof" on a Redis older than 7.2, naming the setting and the version', async function () {
    const redis = await startRedisServer({ appendonly: true });
    try {
      const admin = new Redis(redis.url);
      const version = /redis_version:(\S+)/.exec(await admin.info('server'))![1]!;
      admin.disconnect();
      const [major, minor] = version.split('.').map(Number) as [number, number];
      if (major > 7 || (major === 7 && minor >= 2)) this.skip();
      const err = await startGateway({ redis: { url: redis.url, ackDurability: 'aof' } }).then(
        async (g) => (await g.shutdown(), undefined),
        (e: Error) => e,
      );
      expect(err?.message).to.match(/redis.ackDurability "aof" needs WAITAOF \(Redis >= 7.2\).*runs Redis 7\.0/);
    } finally {
      await redis.stop();
    }
  });
});
