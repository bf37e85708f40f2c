/**
 * Issue 20 under load, on real clusters and Sentinel (npm run test:faults only): a Redis Cluster
 * master SIGKILLed and its replica promoted, a Sentinel primary SIGKILLed and its replica promoted
 * (both with ackDurability replicas: nothing acknowledged may be lost), and a busy stream's slot
 * migrated between masters three times (nothing lost or repeated, no reset). Reports go to
 * artifacts/failover-*.txt; docs/GUARANTEES.md quotes them.
 */
import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import { streamSlot } from '../../lib/store/redis-keys.js';
import { migrateSlot, ownerOf, shards, startRedisCluster, untilNodeReady } from '../support/redis-cluster.js';
import { startRedisSentinelGroup, untilPrimaryMoves, untilReplicated, untilRole } from '../support/redis-sentinel.js';
import { runFailover } from './failover.js';

const artifact = (name: string) => fileURLToPath(new URL(`../../../artifacts/${name}`, import.meta.url));

describe('failover and migration under load (issue 20)', function () {
  this.timeout(240_000);

  it('Redis Cluster: a master SIGKILLed, its replica promoted; no acknowledged message lost (ackDurability replicas), parked clients woken again within seconds, other masters\' streams untouched', async () => {
    const cluster = await startRedisCluster({ nodeTimeoutMs: 1000 });
    try {
      const seed = cluster.nodes[0]!.port;
      const streams = Array.from({ length: 6 }, (_, i) => `fo:${i}`);
      const owners = await Promise.all(streams.map(async (s) => (await ownerOf(seed, streamSlot(s))).port));
      // Not the seed node, so the gateways' REDIS_URL stays reachable (they know every node anyway).
      const victim = (await shards(seed)).find((m) => m.port !== seed && owners.includes(m.port))!;
      const affected = streams.filter((_, i) => owners[i] === victim.port);
      expect(affected.length, 'some streams on the victim').to.be.above(0);
      expect(affected.length, 'some streams elsewhere').to.be.below(streams.length);
      const result = await runFailover({
        setup: 'Redis Cluster, 3 masters + 3 replicas, cluster-node-timeout 1000 ms, ackDurability replicas (1)',
        env: { REDIS_URL: cluster.url, POLLGATE_REDIS_CLUSTER: 'true', POLLGATE_REDIS_ACK_DURABILITY: 'replicas' },
        streams,
        affected,
        async fault() {
          const t0 = Date.now();
          await cluster.kill(victim.port);
          await untilRole(victim.replicas[0]!, 'master');
          const promoted = Date.now() - t0;
          // Back from its nodes.conf, it rejoins as the new master's replica: WAIT has a replica again.
          await cluster.restart(victim.port);
          await untilNodeReady(victim.port, 3);
          return [`SIGKILL master ${victim.port} (streams ${affected.join(', ')}); replica ${victim.replicas[0]} promoted after ${promoted} ms; the old master back as its replica after ${Date.now() - t0} ms`];
        },
      }, { reportFile: artifact('failover-cluster.txt') });
      expect(result.report.ok, result.text).to.equal(true);
      expect(result.wakeMaxMs, result.text).to.be.below(8000);
      for (const s of streams) if (!affected.includes(s)) expect(result.resets.get(s), `${s}: no reset off the failed master\n${result.text}`).to.equal(0);
    } finally {
      await cluster.stop();
    }
  });

  it('Sentinel: the primary SIGKILLed, its replica promoted; no acknowledged message lost (ackDurability replicas), parked clients woken again within seconds', async () => {
    const group = await startRedisSentinelGroup({ downAfterMs: 1000 });
    try {
      const streams = Array.from({ length: 4 }, (_, i) => `fs:${i}`);
      const result = await runFailover({
        setup: 'Sentinel, 1 primary + 1 replica + 3 sentinels, down-after-milliseconds 1000, ackDurability replicas (1)',
        env: { POLLGATE_REDIS_SENTINELS: group.sentinels.join(','), POLLGATE_REDIS_NAME: group.name, POLLGATE_REDIS_ACK_DURABILITY: 'replicas' },
        streams,
        affected: streams,
        async fault() {
          const t0 = Date.now();
          const old = await group.primaryPort();
          await group.kill(old);
          const now = await untilPrimaryMoves(group, old);
          const promoted = Date.now() - t0;
          // An empty server on the old port: Sentinel makes it the new primary's replica.
          await group.restart(old);
          await untilReplicated(now, 1, 30_000);
          return [`SIGKILL primary ${old}; Sentinel named ${now} after ${promoted} ms; ${old} back as its replica after ${Date.now() - t0} ms`];
        },
      }, { reportFile: artifact('failover-sentinel.txt') });
      expect(result.report.ok, result.text).to.equal(true);
      expect(result.wakeMaxMs, result.text).to.be.below(8000);
    } finally {
      await group.stop();
    }
  });

  it('Redis Cluster: a busy stream\'s slot migrated three times under load; nothing lost or repeated, no reset', async () => {
    const cluster = await startRedisCluster();
    try {
      const seed = cluster.nodes[0]!.port;
      const busy = 'mig:busy';
      const slot = streamSlot(busy);
      const result = await runFailover({
        setup: 'Redis Cluster, 3 masters + 3 replicas, ackDurability none; the busy stream gets half the sends',
        env: { REDIS_URL: cluster.url, POLLGATE_REDIS_CLUSTER: 'true' },
        streams: [busy, 'mig:quiet'],
        affected: [busy],
        async fault() {
          const log: string[] = [];
          for (let i = 0; i < 3; i++) {
            const all = await shards(seed);
            const from = all.find((m) => m.ranges.some(([lo, hi]) => slot >= lo && slot <= hi))!;
            const to = all[(all.indexOf(from) + 1) % all.length]!;
            const t0 = Date.now();
            await migrateSlot(slot, from, to, all.filter((m) => m !== from && m !== to));
            log.push(`slot ${slot} (${busy}) moved ${from.port} -> ${to.port} in ${Date.now() - t0} ms`);
            await new Promise((r) => setTimeout(r, 1500));
          }
          return log;
        },
      }, { reportFile: artifact('migration-cluster.txt') });
      expect(result.report.ok, result.text).to.equal(true);
      for (const s of result.report.streams) {
        expect(s.resets, `${s.stream}: resets\n${result.text}`).to.equal(0);
        expect(s.redelivered, `${s.stream}: repeated\n${result.text}`).to.equal(0);
      }
      expect(result.wakeMaxMs, result.text).to.be.below(8000);
    } finally {
      await cluster.stop();
    }
  });
});
