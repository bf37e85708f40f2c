/**
 * GET /stats (API keys only): this process's parked clients, subscriptions and resource use,
 * for operators, the benchmark (CPU time, RSS, event-loop delay) and tests that must know when
 * polls are parked. `?reset=1` restarts the event-loop delay histogram after answering; `?gc=1`
 * collects garbage first when the process runs with --expose-gc (the benchmark's memory figures).
 */
import type { Context } from 'koa';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { Auth } from '../auth.js';
import { ForbiddenError } from '../errors.js';
import { credentialFrom } from '../http/credentials.js';
import { queryParams } from '../http/params.js';
import { noStore } from '../http/request-log.js';
import type { Store } from '../store/store.js';
import type { WaiterRegistry } from '../waiters.js';
import type { ConnectionHub } from '../transports/hub.js';
import { requestHeader } from '../http/headers.js';

// One histogram per process, sampled every 10 ms: cheap enough to leave on in production.
let loopDelay: IntervalHistogram | undefined;

function eventLoopDelay(): IntervalHistogram {
  if (!loopDelay) {
    loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();
  }
  return loopDelay;
}

const ms = (ns: number) => Math.round(ns / 1e4) / 100;

export interface StatsDeps {
  auth: Auth;
  store: Store;
  registry: WaiterRegistry;
  longPolls: ConnectionHub;
  websockets: ConnectionHub;
  sse: ConnectionHub;
  requests: { readonly total: number };
}

export function statsRoute(deps: StatsDeps) {
  const delay = eventLoopDelay();
  return async function stats(ctx: Context): Promise<void> {
    noStore(ctx);
    const principal = await deps.auth.authenticate(credentialFrom(requestHeader(ctx, 'authorization'), undefined));
    if (principal.kind !== 'server') throw new ForbiddenError('stats need an API key');
    const query = queryParams(ctx);
    const gc = (globalThis as { gc?: () => void }).gc;
    if (query.gc === '1' && gc) gc();
    const cpu = process.cpuUsage();
    const mem = process.memoryUsage();
    ctx.body = {
      pid: process.pid,
      store: deps.store.kind,
      // Requests the pipeline took since start (every endpoint; WebSocket frames are not requests).
      requests: deps.requests.total,
      parkedPolls: deps.longPolls.size,
      websockets: deps.websockets.size,
      eventStreams: deps.sse.size,
      waiters: deps.registry.size,
      subscribedStreams: deps.registry.streamCount,
      // Redis: redisReads, tailHits, tailMisses (the tail cache), subscriptions incl. lingering ones.
      storeStats: deps.store.stats?.() ?? {},
      cpuMicros: { user: cpu.user, system: cpu.system },
      memory: { rss: mem.rss, heapUsed: mem.heapUsed, heapTotal: mem.heapTotal, external: mem.external, arrayBuffers: mem.arrayBuffers },
      // Milliseconds a 10 ms timer fired late, since start or the last ?reset=1.
      eventLoopDelayMs: { p50: ms(delay.percentile(50)), p99: ms(delay.percentile(99)), max: ms(delay.max), samples: delay.count },
      uptimeSeconds: Math.round(process.uptime()),
    };
    if (query.reset === '1') delay.reset();
  };
}
