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
