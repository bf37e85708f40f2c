/**
 * GET /stats (API keys only): this process's parked clients, subscriptions and resource use,
 * for operators, the benchmark (CPU time, RSS) and tests that must know when polls are parked.
 */
import type { Context } from 'koa';
import type { Auth } from '../auth.js';
import { ForbiddenError } from '../errors.js';
import { credentialOf } from '../http/credentials.js';
import { noStore } from '../http/request-log.js';
import type { Store } from '../store/store.js';
import type { WaiterRegistry } from '../waiters.js';
import type { LongPolls } from '../transports/long-poll.js';

export function statsRoute(deps: { auth: Auth; store: Store; registry: WaiterRegistry; longPolls: LongPolls }) {
  return async function stats(ctx: Context): Promise<void> {
    noStore(ctx);
    const principal = await deps.auth.authenticate(credentialOf(ctx, undefined));
    if (principal.kind !== 'server') throw new ForbiddenError('stats need an API key');
    const cpu = process.cpuUsage();
    const mem = process.memoryUsage();
    ctx.body = {
      pid: process.pid,
      store: deps.store.kind,
      parkedPolls: deps.longPolls.size,
      waiters: deps.registry.size,
      subscribedStreams: deps.registry.streamCount,
      cpuMicros: { user: cpu.user, system: cpu.system },
      memory: { rss: mem.rss, heapUsed: mem.heapUsed },
      uptimeSeconds: Math.round(process.uptime()),
    };
  };
}
