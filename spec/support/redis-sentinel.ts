/**
 * A Sentinel-managed Redis for tests: a primary, a replica and 3 sentinels on free ports in temp
 * dirs. The sentinels are told about each other and the replica up front (fixed ids, known-sentinel
 * and known-replica lines), so the group is complete at once instead of after Sentinel's 2 s
 * hello round. stop() kills every process.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { onFreePorts, spawnRedis, startRedisServer, type RedisServer } from './redis.js';

export const SENTINEL_NAME = 'pgmaster';

export interface RedisSentinelGroup {
  name: string;
  /** The sentinels as "host:port" (redis.sentinels). */
  sentinels: string[];
  /** Data nodes as started: [first primary, first replica] (a failover swaps the roles). */
  nodes: RedisServer[];
  sentinelServers: RedisServer[];
  /** The port Sentinel names as the primary now. */
  primaryPort(): Promise<number>;
  /** SIGKILLs the data node on `port`. */
  kill(port: number): Promise<void>;
  /** Starts a fresh (empty) data node on `port` again; Sentinel makes it a replica of the primary. */
  restart(port: number): Promise<void>;
  stop(): Promise<void>;
}

export interface SentinelOptions {
  /** Sentinel's down-after-milliseconds: how long a silent primary goes unnoticed (default 1000). */
  downAfterMs?: number;
  /** More redis-server arguments for the data nodes. */
  extraArgs?: string[];
}

const sentinelId = (i: number) => String(i + 1).repeat(40);

/** Starts redis-server in Sentinel mode with a config file of its own, resolving once it listens. */
async function startSentinel(port: number, config: string): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'pollgate-sentinel-'));
  const file = join(dir, 'sentinel.conf');
  writeFileSync(file, `port ${port}\nbind 127.0.0.1\ndir ${dir}\nlogfile ""\n${config}`);
  return spawnRedis([file, '--sentinel'], { port, dir, ownsDir: true, ready: /Sentinel ID is|Ready to accept connections/, what: 'sentinel' });
}

export async function startRedisSentinelGroup(options: SentinelOptions = {}): Promise<RedisSentinelGroup> {
  const stoppable: RedisServer[] = [];
  const stop = async () => void (await Promise.all(stoppable.map((s) => s.stop())));
  try {
    const extra = ['--repl-diskless-sync-delay', '0', ...(options.extraArgs ?? [])];
    const primary = await startRedisServer({ extraArgs: extra });
    stoppable.push(primary);
    const replica = await startRedisServer({ extraArgs: [...extra, '--replicaof', '127.0.0.1', String(primary.port)] });
    stoppable.push(replica);
    // Each sentinel's config names the others' ports: a port taken before its sentinel bound it
    // starts all three again, on new ports.
    const { ports, sentinels } = await onFreePorts(3, async (ports) => {
      const started = await Promise.allSettled(ports.map((port, i) => startSentinel(port, [
        `sentinel myid ${sentinelId(i)}`,
        `sentinel monitor ${SENTINEL_NAME} 127.0.0.1 ${primary.port} 2`,
        `sentinel down-after-milliseconds ${SENTINEL_NAME} ${options.downAfterMs ?? 1000}`,
        `sentinel failover-timeout ${SENTINEL_NAME} 5000`,
        `sentinel known-replica ${SENTINEL_NAME} 127.0.0.1 ${replica.port}`,
        ...ports.flatMap((other, j) => (j === i ? [] : [`sentinel known-sentinel ${SENTINEL_NAME} 127.0.0.1 ${other} ${sentinelId(j)}`])),
      ].join('\n') + '\n')));
      const up = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) {
        await Promise.all(up.map((s) => s.stop()));
        throw failed.reason;
      }
      return { ports, sentinels: up };
    });
    stoppable.push(...sentinels);
    await untilReplicated(primary.port, 1);
    const group: RedisSentinelGroup = {
      name: SENTINEL_NAME,
      sentinels: ports.map((p) => `127.0.0.1:${p}`),
      nodes: [primary, replica],
      sentinelServers: sentinels,
      kill: async (port) => group.nodes.find((n) => n.port === port)?.stop(),
      async restart(port) {
        const i = group.nodes.findIndex((n) => n.port === port);
        await group.nodes[i]!.stop();
        group.nodes[i] = await startRedisServer({ port, extraArgs: extra });
        stoppable.push(group.nodes[i]!);
      },
      async primaryPort() {
        const admin = new Redis(ports[0]!, '127.0.0.1', { maxRetriesPerRequest: 1 });
        try {
          return Number(((await admin.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', SENTINEL_NAME)) as [string, string])[1]);
        } finally {
          admin.disconnect();
        }
      },
      stop,
    };
    return group;
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Resolves once the primary on `port` has `replicas` replicas online. */
export async function untilReplicated(port: number, replicas: number, timeoutMs = 15_000): Promise<void> {
  const admin = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 1 });
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const info = await admin.info('replication');
      if ((info.match(/^slave\d+:.*state=online/gm) ?? []).length >= replicas) return;
      if (Date.now() > deadline) throw new Error(`primary ${port} has no ${replicas} online replica(s)`);
      await new Promise((r) => setTimeout(r, 25));
    }
  } finally {
    admin.disconnect();
  }
}

/** Asks Sentinel for a failover now (SENTINEL FAILOVER) and resolves once it names another primary. */
export async function failOver(group: RedisSentinelGroup, timeoutMs = 15_000): Promise<number> {
  const before = await group.primaryPort();
  const admin = new Redis(Number(group.sentinels[0]!.split(':')[1]), '127.0.0.1', { maxRetriesPerRequest: 1 });
  try {
    await admin.call('SENTINEL', 'FAILOVER', group.name);
  } finally {
    admin.disconnect();
  }
  return untilPrimaryMoves(group, before, timeoutMs);
}

/** Resolves with the new primary's port once Sentinel names another than `from`. */
export async function untilPrimaryMoves(group: RedisSentinelGroup, from: number, timeoutMs = 15_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const now = await group.primaryPort();
    if (now !== from) return now;
    if (Date.now() > deadline) throw new Error(`Sentinel still names ${from} as the primary`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Resolves once the server on `port` reports the role (INFO replication). */
export async function untilRole(port: number, role: 'master' | 'slave', timeoutMs = 15_000): Promise<void> {
  const admin = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 1 });
  try {
    const deadline = Date.now() + timeoutMs;
    while (!new RegExp(`^role:${role}`, 'm').test(await admin.info('replication'))) {
      if (Date.now() > deadline) throw new Error(`${port} is not ${role}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  } finally {
    admin.disconnect();
  }
}

/** Resolves once the replica on `replica` has everything the primary on `primary` had written when called. */
export async function untilCaughtUp(primary: number, replica: number, timeoutMs = 15_000): Promise<void> {
  const offset = (info: string, field: string) => Number(new RegExp(`^${field}:(\\d+)`, 'm').exec(info)?.[1] ?? -1);
  const p = new Redis(primary, '127.0.0.1', { maxRetriesPerRequest: 1 });
  const r = new Redis(replica, '127.0.0.1', { maxRetriesPerRequest: 1 });
  try {
    const target = offset(await p.info('replication'), 'master_repl_offset');
    const deadline = Date.now() + timeoutMs;
    while (offset(await r.info('replication'), 'slave_repl_offset') < target) {
      if (Date.now() > deadline) throw new Error(`replica ${replica} is behind primary ${primary}`);
      await new Promise((res) => setTimeout(res, 10));
    }
  } finally {
    p.disconnect();
    r.disconnect();
  }
}
