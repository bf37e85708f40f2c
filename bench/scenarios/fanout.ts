/**
 * Broadcast fan-out: N clients park on one stream, one /send, time until 50/99/100% of them
 * have the message; event-loop delay during the fan-out; store script calls it cost (Redis).
 */
import { percentile, poll, pool, round, send } from '../client.js';
import type { ScenarioContext } from './context.js';
import { parkInChunks, redisScriptCalls } from './context.js';

export interface FanoutResult {
  clients: number;
  p50Ms: number;
  p99Ms: number;
  p100Ms: number;
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
  serverCpuMs: number;
  /** EVALSHA calls for the append and every read the fan-out caused (Redis only). */
  storeCalls?: number;
}

let runs = 0;

export async function fanout(ctx: ScenarioContext, clients: number): Promise<FanoutResult> {
  const name = `fanout-${clients}`;
  // A fresh stream each call: a repeated run on the old one would answer at once, never park.
  const stream = `${ctx.tag}:b${runs++}:${clients}`;
  const p = pool(ctx.gw.url, clients);
  const pub = pool(ctx.gw.url, 1);
  const arrivals: number[] = [];
  let t0 = 0;
  const polls = await parkInChunks(ctx, clients, () =>
    poll(p, ctx.token, { streams: stream, since: 'earliest', timeoutS: 55 }).then((a) => {
      arrivals.push(performance.now() - t0);
      if (a.messages.length !== 1 || a.messages[0]!.seq !== 1 || a.messages[0]!.data.n !== 1) {
        ctx.violations.add(name, `expected exactly message 1, got ${JSON.stringify(a.messages.map((m) => m.seq))}`);
      }
    }),
  );
  await ctx.gw.stats(true);
  const cpu0 = await ctx.gw.cpuMicros();
  const calls0 = await redisScriptCalls(ctx);
  t0 = performance.now();
  await send(pub, stream, { n: 1, t: t0 });
  const settled = await Promise.allSettled(polls);
  for (const s of settled) if (s.status === 'rejected') ctx.violations.add(name, `poll failed: ${String(s.reason)}`);
  const after = await ctx.gw.stats(true);
  const calls1 = await redisScriptCalls(ctx);
  await Promise.all([p.destroy(), pub.destroy()]);
  arrivals.sort((a, b) => a - b);
  if (arrivals.length !== clients) ctx.violations.add(name, `${clients - arrivals.length} clients never got the message`);
  return {
    clients,
    p50Ms: round(percentile(arrivals, 50)),
    p99Ms: round(percentile(arrivals, 99)),
    p100Ms: round(arrivals[arrivals.length - 1] ?? NaN),
    loopDelayP99Ms: after.eventLoopDelayMs.p99,
    loopDelayMaxMs: after.eventLoopDelayMs.max,
    serverCpuMs: round((after.cpuMicros.user + after.cpuMicros.system - cpu0) / 1000),
    ...(calls0 !== undefined && calls1 !== undefined ? { storeCalls: calls1 - calls0 } : {}),
  };
}
