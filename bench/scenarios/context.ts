/** What every scenario gets: the gateway, the store kind, Redis access and the violation log. */
import type { Redis } from 'ioredis';
import type { Violations } from '../client.js';
import type { GatewayProcess } from '../gateway.js';

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
