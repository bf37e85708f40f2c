/** What every scenario gets: the gateway, the store kind, Redis access and the violation log. */
import type { Redis } from 'ioredis';
import { redisClient, type RedisServer } from '../../spec/support/redis.js';
import type { Violations } from '../client.js';
import { GatewayProcess, type GatewayOptions } from '../gateway.js';

export interface ScenarioContext {
  gw: GatewayProcess;
  store: 'memory' | 'redis';
  /** Our own redis-server (Redis runs only): its pid and a client for INFO. */
  redis?: { pid: number; client: Redis };
  violations: Violations;
  /** Unique per run, so every scenario writes to fresh streams. */
  tag: string;
  token: string;
  /** Most parked clients the descriptor limit allows on each side. */
  maxClients: number;
}

export interface GatewaySetup extends Omit<GatewayOptions, 'redisUrl'> {
  store: 'memory' | 'redis';
  /** The Redis runs' own redis-server. */
  redis?: RedisServer;
  violations: Violations;
  token: string;
  maxClients: number;
}

/** Starts a gateway on this store, runs `fn` with its scenario context, and stops it. */
export async function withGateway<T>(setup: GatewaySetup, fn: (ctx: ScenarioContext) => Promise<T>): Promise<T> {
  const { store, redis, violations, token, maxClients, ...options } = setup;
  if (store === 'redis' && !redis) throw new Error('the Redis store needs a redis-server');
  const gw = await GatewayProcess.start({ ...options, redisUrl: store === 'redis' ? redis!.url : '' });
  const client = store === 'redis' ? redisClient(redis!.url) : undefined;
  try {
    return await fn({
      gw, store, violations, token, maxClients, tag: `${store}${Date.now().toString(36)}`,
      redis: client ? { pid: redis!.process!.pid!, client } : undefined,
    });
  } finally {
    await client?.quit();
    await gw.stop();
  }
}

/** Script calls (EVALSHA) Redis has served so far: appends plus reads. */
export async function redisScriptCalls(ctx: ScenarioContext): Promise<number | undefined> {
  if (!ctx.redis) return undefined;
  const info = await ctx.redis.client.info('commandstats');
  let calls = 0;
  for (const m of info.matchAll(/cmdstat_(?:evalsha|eval):calls=(\d+)/g)) calls += Number(m[1]);
  return calls;
}

const CHUNK = 500;

/**
 * Starts `count` polls in chunks, each once the previous chunk is parked: a burst of thousands
 * of connects overflows the listen backlog and the dropped SYNs retry seconds later.
 */
export async function parkInChunks<T>(ctx: ScenarioContext, count: number, start: (i: number) => Promise<T>, already = 0): Promise<Promise<T>[]> {
  const polls: Promise<T>[] = [];
  let failure: unknown;
  for (let i = 0; i < count; ) {
    const end = Math.min(count, i + CHUNK);
    for (; i < end; i++) {
      const p = start(i);
      // Settled by the caller; meanwhile a failure ends the wait with its reason.
      p.catch((err) => (failure ??= err));
      polls.push(p);
    }
    await ctx.gw.waitFor(`${end} of ${count} polls to park`, (s) => {
      if (failure) throw new Error(`a poll failed while parking: ${String(failure)}`);
      return s.parkedPolls >= already + end;
    }, 60_000);
  }
  return polls;
}
