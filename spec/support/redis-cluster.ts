/**
 * Redis Clusters for tests: 3 masters and (by default) a replica each on free ports, in temp dirs,
 * joined with redis-cli --cluster create, ready once every node reports cluster_state:ok and every
 * replica's link to its master is up. The run shares one (started on first use, stopped by the
 * root hooks); fault tests that kill nodes start their own. Helpers read the live topology, count
 * commands (INFO commandstats) and migrate a slot by hand.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Cluster, Redis } from 'ioredis';
import { freePort } from './ports.js';
import { startRedisServer, type RedisServer } from './redis.js';

const run = promisify(execFile);

export interface RedisCluster {
  /** One seed node's URL (what redis.url is with redis.cluster true). */
  url: string;
  /** Every node the harness started, masters first (as created; failovers change the roles). */
  nodes: RedisServer[];
  /** A cluster client for test assertions; the caller disconnects it. */
  client(): Cluster;
  /** SIGKILLs the node on `port` (its directory, and so its nodes.conf, stays). */
  kill(port: number): Promise<void>;
  /** Starts the node on `port` again from its directory: it rejoins the cluster as the same node. */
  restart(port: number): Promise<void>;
  stop(): Promise<void>;
}

export interface ClusterOptions {
  masters?: number;
  /** Replicas per master (default 1). */
  replicas?: number;
  /** cluster-node-timeout, ms: how long a dead master goes unnoticed (default 2000). */
  nodeTimeoutMs?: number;
  /** More redis-server arguments for every node. */
  extraArgs?: string[];
}

/** A plain connection to one node for assertions; the caller disconnects it. */
export function nodeClient(port: number): Redis {
  return new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 1, lazyConnect: false });
}

/** Starts a cluster; stop() kills every node. */
export async function startRedisCluster(options: ClusterOptions = {}): Promise<RedisCluster> {
  const masters = options.masters ?? 3;
  const replicas = options.replicas ?? 1;
  const ports: number[] = [];
  for (let i = 0; i < masters * (1 + replicas); i++) ports.push(await freePort());
  const nodes: RedisServer[] = [];
  const base = mkdtempSync(join(tmpdir(), 'pollgate-cluster-'));
  const stop = async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    rmSync(base, { recursive: true, force: true });
  };
  const startNode = (port: number) => {
    const dir = join(base, String(port));
    mkdirSync(dir, { recursive: true });
    return startRedisServer({
      port,
      dir,
      extraArgs: [
        '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`,
        '--cluster-node-timeout', String(options.nodeTimeoutMs ?? 2000),
        // A replica's first sync would otherwise wait 5 s for more replicas to share it.
        '--repl-diskless-sync-delay', '0',
        // A lone master never learns its address from a peer and would announce "" in CLUSTER SLOTS.
        '--cluster-announce-ip', '127.0.0.1',
        ...(options.extraArgs ?? []),
      ],
    });
  };
  try {
    nodes.push(...(await Promise.all(ports.map(startNode))));
    if (masters >= 3) {
      await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', String(replicas), '--cluster-yes']);
    } else {
      if (masters !== 1 || replicas !== 0) throw new Error('redis-cli --cluster create needs 3 masters; below that only 1 master without replicas');
      // What create does for one node: every slot on it.
      const admin = nodeClient(ports[0]!);
      await admin.call('CLUSTER', 'ADDSLOTSRANGE', 0, 16383).finally(() => admin.disconnect());
    }
    await Promise.all(ports.map((port) => untilNodeReady(port, masters * replicas)));
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url: `redis://127.0.0.1:${ports[0]}`,
    nodes,
    client: () => new Cluster([{ host: '127.0.0.1', port: ports[0]! }], { redisOptions: { maxRetriesPerRequest: 1 } }),
    kill: async (port) => nodes.find((n) => n.port === port)?.stop(),
    async restart(port) {
      const i = nodes.findIndex((n) => n.port === port);
      await nodes[i]!.stop();
      nodes[i] = await startNode(port);
    },
    stop,
  };
}

/**
 * Resolves once the node says the cluster is ok, knows `replicas` replicas in all (gossip tells
 * the others late) and, if it is a replica, its master link is up.
 */
export async function untilNodeReady(port: number, replicas: number, timeoutMs = 15_000): Promise<void> {
  const admin = nodeClient(port);
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const [info, replication, nodes] = await Promise.all([admin.call('CLUSTER', 'INFO'), admin.info('replication'), admin.call('CLUSTER', 'NODES')]);
      const known = String(nodes).split('\n').filter((l) => / (myself,)?slave /.test(l)).length;
      if (/cluster_state:ok/.test(String(info)) && known === replicas && (!/role:slave/.test(replication) || /master_link_status:up/.test(replication))) return;
      if (Date.now() > deadline) throw new Error(`cluster node ${port} not ready: ${String(info).split('\r\n')[0]}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  } finally {
    admin.disconnect();
  }
}

let shared: Promise<RedisCluster> | undefined;

/** The run's cluster (3 masters, 3 replicas), started on first use. Tests must not kill its nodes. */
export function sharedRedisCluster(): Promise<RedisCluster> {
  return (shared ??= startRedisCluster());
}

export async function stopSharedRedisCluster(): Promise<void> {
  const c = shared;
  shared = undefined;
  if (!c) return;
  await (await c.catch(() => undefined))?.stop();
}

export interface ShardInfo {
  /** The master's port and node id. */
  port: number;
  id: string;
  /** Slot ranges it serves, inclusive. */
  ranges: [number, number][];
  replicas: number[];
}

/**
 * The masters, their slots and their replicas as the node on `port` sees them (CLUSTER NODES: CLUSTER
 * SLOTS leaves out a replica until something was replicated to it).
 */
export async function shards(port: number): Promise<ShardInfo[]> {
  const admin = nodeClient(port);
  try {
    const lines = String(await admin.call('CLUSTER', 'NODES')).trim().split('\n').map((l) => l.split(' '));
    const portOf = (addr: string) => Number(addr.split('@')[0]!.split(':').at(-1));
    const masters = lines.filter((l) => l[2]!.split(',').includes('master') && !l[2]!.includes('fail') && l.length > 8);
    return masters.map((m) => ({
      port: portOf(m[1]!),
      id: m[0]!,
      ranges: m.slice(8).filter((r) => !r.startsWith('[')).map((r) => {
        const [lo, hi = lo] = r.split('-').map(Number) as [number, number?];
        return [lo, hi] as [number, number];
      }),
      replicas: lines.filter((l) => l[3] === m[0] && !l[2]!.includes('fail')).map((l) => portOf(l[1]!)),
    })).sort((a, b) => a.port - b.port);
  } finally {
    admin.disconnect();
  }
}

/** The master serving a slot, as the node on `port` sees it. */
export async function ownerOf(port: number, slot: number): Promise<ShardInfo> {
  const found = (await shards(port)).find((s) => s.ranges.some(([lo, hi]) => slot >= lo && slot <= hi));
  if (!found) throw new Error(`no master serves slot ${slot}`);
  return found;
}

/** Calls of each command on one node so far (INFO commandstats; 0 for a command never called). */
export async function commandCalls(port: number, commands: readonly string[]): Promise<Record<string, number>> {
  const admin = nodeClient(port);
  try {
    const stats = await admin.info('commandstats');
    return Object.fromEntries(commands.map((c) => [c, Number(new RegExp(`^cmdstat_${c.toLowerCase()}:calls=(\\d+)`, 'm').exec(stats)?.[1] ?? 0)]));
  } finally {
    admin.disconnect();
  }
}

/** The sum over nodes of commandCalls. */
export async function commandCallsOn(ports: readonly number[], commands: readonly string[]): Promise<Record<string, number>> {
  const total: Record<string, number> = Object.fromEntries(commands.map((c) => [c, 0]));
  for (const stats of await Promise.all(ports.map((p) => commandCalls(p, commands)))) for (const c of commands) total[c]! += stats[c]!;
  return total;
}

/**
 * Moves one slot and its keys from one master to another the way redis-cli --cluster reshard
 * does: IMPORTING on the target, MIGRATING on the source, MIGRATE the keys, SETSLOT NODE on the
 * target, then on the source (which pushes `sunsubscribe` to the slot's sharded subscribers), then
 * on every other master. Hooks run inside the window: `afterKeysMoved` once the keys are on the
 * target and before it owns the slot (the source answers ASK for them); `betweenOwners` after the
 * target took the slot and before the source let go (an append then runs on the target, while
 * sharded subscribers are still on the source, unless gossip told the source first).
 */
export async function migrateSlot(slot: number, from: ShardInfo, to: ShardInfo, others: readonly ShardInfo[], hooks: { afterKeysMoved?: () => Promise<void>; betweenOwners?: () => Promise<void> } = {}): Promise<void> {
  const source = nodeClient(from.port);
  const target = nodeClient(to.port);
  try {
    await target.call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', from.id);
    await source.call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', to.id);
    for (;;) {
      const keys = (await source.call('CLUSTER', 'GETKEYSINSLOT', slot, 100)) as string[];
      if (!keys.length) break;
      await source.call('MIGRATE', '127.0.0.1', to.port, '', 0, 5000, 'KEYS', ...keys);
    }
    await hooks.afterKeysMoved?.();
    await target.call('CLUSTER', 'SETSLOT', slot, 'NODE', to.id);
    await hooks.betweenOwners?.();
    await source.call('CLUSTER', 'SETSLOT', slot, 'NODE', to.id);
    for (const other of others) {
      const admin = nodeClient(other.port);
      try {
        await admin.call('CLUSTER', 'SETSLOT', slot, 'NODE', to.id);
      } finally {
        admin.disconnect();
      }
    }
  } finally {
    source.disconnect();
    target.disconnect();
  }
}
