/**
 * The five targets of the peer comparison, each its own process pinned to core 0 by
 * bench/gateway.ts's GatewayProcess: pollgate on the memory and on the Redis store, Socket.IO
 * (polling) without and with @socket.io/redis-adapter, and Faye. The Redis ones share the bench's
 * private redis-server.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RedisServer } from '../../spec/support/redis.js';
import { GatewayProcess } from '../gateway.js';
import { bayeuxDriver } from './bayeux.js';
import type { PeerDriver } from './driver.js';
import { socketIoDriver } from './engine-io.js';
import { pollgateDriver } from './pollgate-driver.js';

export const TARGET_NAMES = ['pollgate-memory', 'pollgate-redis', 'socketio', 'socketio-redis', 'faye'] as const;
export type TargetName = (typeof TARGET_NAMES)[number];

/** A comma-separated list of target names (a --targets option); throws on a name that is none. */
export function targetList(list: string): TargetName[] {
  const names = list.split(',');
  for (const t of names) if (!(TARGET_NAMES as readonly string[]).includes(t)) throw new Error(`unknown target ${t} (one of ${TARGET_NAMES.join(', ')})`);
  return names as TargetName[];
}

export const TARGET_LABELS: Record<TargetName, string> = {
  'pollgate-memory': 'pollgate memory',
  'pollgate-redis': 'pollgate Redis',
  socketio: 'Socket.IO polling',
  'socketio-redis': 'Socket.IO + redis-adapter',
  faye: 'Faye',
};

export const SOCKETIO = fileURLToPath(new URL('./socketio-server.js', import.meta.url));
export const FAYE = fileURLToPath(new URL('./faye-server.js', import.meta.url));

/** A running target: its process (GET /stats as pollgate's), its protocol, and the Redis it uses. */
export interface PeerTarget {
  name: TargetName;
  gw: GatewayProcess;
  driver: PeerDriver;
  /** The redis-server's pid, for the Redis targets (its CPU per delivery). */
  redisPid?: number;
}

export interface TargetSetup {
  redis: RedisServer;
  /** A pollgate client token that may read every stream. */
  token: string;
  logDir: string;
  /** Each target writes a V8 CPU profile here (a directory of its own name) when it stops. */
  cpuProfDir?: string;
  /** Node flags for the target, after the start script's (e.g. --trace-gc-nvp). */
  nodeFlags?: string[];
}

/** Starts `name` and resolves once it answers /healthz; the caller stops `gw`. */
export async function startTarget(name: TargetName, o: TargetSetup): Promise<PeerTarget> {
  const usesRedis = name === 'pollgate-redis' || name === 'socketio-redis';
  const script = name.startsWith('socketio') ? SOCKETIO : name === 'faye' ? FAYE : undefined;
  const gw = await GatewayProcess.start({ redisUrl: usesRedis ? o.redis.url : '', logLevel: 'warn', logFile: join(o.logDir, `peer-${name}.log`), script, cpuProfDir: o.cpuProfDir && join(o.cpuProfDir, name), nodeFlags: o.nodeFlags });
  const driver = name.startsWith('pollgate') ? pollgateDriver(o.token) : name === 'faye' ? bayeuxDriver : socketIoDriver;
  return { name, gw, driver, redisPid: usesRedis ? o.redis.process?.pid : undefined };
}
