/**
 * A 3-master Redis Cluster for tests, started once per run on demand (like sharedRedis) and
 * stopped by the root hooks: three redis-server --cluster-enabled yes in temp dirs, joined with
 * redis-cli --cluster create, ready once every node reports cluster_state:ok.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Cluster, Redis } from 'ioredis';
import { freePort } from './ports.js';
import { startRedisServer, type RedisServer } from './redis.js';

const run = promisify(execFile);

export interface RedisCluster {
  /** One seed node's URL (what redis.url is with redis.cluster true). */
  url: string;
  nodes: RedisServer[];
  /** A cluster client for test assertions; the caller disconnects it. */
  client(): Cluster;
}

let shared: Promise<RedisCluster> | undefined;

async function start(): Promise<RedisCluster> {
  const ports = [await freePort(), await freePort(), await freePort()];
  const nodes: RedisServer[] = [];
  try {
    for (const port of ports) {
      nodes.push(await startRedisServer({ port, extraArgs: ['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', '2000'] }));
    }
    await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes']);
    for (const port of ports) {
      const admin = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 1 });
      try {
        const deadline = Date.now() + 15_000;
        while (!/cluster_state:ok/.test(String(await admin.call('CLUSTER', 'INFO')))) {
          if (Date.now() > deadline) throw new Error(`cluster node ${port} never reported cluster_state:ok`);
          await new Promise((r) => setTimeout(r, 50));
        }
      } finally {
        admin.disconnect();
      }
    }
  } catch (err) {
    await Promise.all(nodes.map((n) => n.stop()));
    throw err;
  }
  return {
    url: `redis://127.0.0.1:${ports[0]}`,
    nodes,
    client: () => new Cluster([{ host: '127.0.0.1', port: ports[0]! }], { redisOptions: { maxRetriesPerRequest: 1 } }),
  };
}

/** The run's cluster, started on first use. */
export function sharedRedisCluster(): Promise<RedisCluster> {
  return (shared ??= start());
}

export async function stopSharedRedisCluster(): Promise<void> {
  const c = shared;
  shared = undefined;
  if (!c) return;
  const cluster = await c.catch(() => undefined);
  await Promise.all(cluster?.nodes.map((n) => n.stop()) ?? []);
}
