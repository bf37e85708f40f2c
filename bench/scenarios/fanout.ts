/**
 * Broadcast fan-out: N clients park on one stream (or subscribe to it over WebSocket or SSE),
 * one /send, time until 50/99/100% of them have the message; event-loop delay during the
 * fan-out; store script calls it cost (Redis).
 */
import { arrivalTimes, poll, pool, round, send, type ArrivalTimes, type Message } from '../client.js';
import { openInChunks, openStream, type StreamClient, type Transport } from '../stream-client.js';
import type { ScenarioContext } from './context.js';
import { parkInChunks, redisScriptCalls } from './context.js';

export interface FanoutResult extends ArrivalTimes {
  transport: Transport;
  clients: number;
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
  serverCpuMs: number;
  /** EVALSHA calls for the append and every read the fan-out caused (Redis only). */
  storeCalls?: number;
}

let runs = 0;

export async function fanout(ctx: ScenarioContext, clients: number, transport: Transport = 'poll'): Promise<FanoutResult> {
  const name = `fanout-${transport === 'poll' ? '' : `${transport}-`}${clients}`;
  // A fresh stream each call: a repeated run on the old one would answer at once, never park.
  const stream = `${ctx.tag}:b${runs++}:${transport}:${clients}`;
  const p = pool(ctx.gw.url, clients);
  const pub = pool(ctx.gw.url, 1);
  const arrivals: number[] = [];
  let t0 = 0;
  const check = (messages: Message[]) => {
    if (messages.length !== 1 || messages[0]!.seq !== 1 || messages[0]!.data.n !== 1) {
      ctx.violations.add(name, `expected exactly message 1, got ${JSON.stringify(messages.map((m) => m.seq))}`);
    }
  };
  let waiting: Promise<unknown>[];
  let open: StreamClient[] = [];
  if (transport === 'poll') {
    waiting = await parkInChunks(ctx, clients, () =>
      poll(p, ctx.token, { streams: stream, since: 'earliest', timeoutS: 55 }).then((a) => {
        arrivals.push(performance.now() - t0);
        check(a.messages);
      }),
    );
  } else {
    const got: Promise<void>[] = [];
    open = await openInChunks(clients, (i) => {
      let arrived!: () => void;
      got[i] = new Promise<void>((r) => (arrived = r));
      return openStream(transport, ctx.gw.url, ctx.token, stream, {
        onMessages: (messages, now) => {
          arrivals.push(now - t0);
          check(messages);
          arrived();
        },
        onProblem: (what) => ctx.violations.add(name, what),
      }, p);
    });
    waiting = got;
  }
  await ctx.gw.stats(true);
  const cpu0 = await ctx.gw.cpuMicros();
  const calls0 = await redisScriptCalls(ctx);
  t0 = performance.now();
  await send(pub, stream, { n: 1, t: t0 });
  const settled = await Promise.allSettled(transport === 'poll' ? waiting : waiting.map((w) => withDeadline(w, 30_000)));
  for (const s of settled) if (s.status === 'rejected') ctx.violations.add(name, `client failed: ${String(s.reason)}`);
  const after = await ctx.gw.stats(true);
  const calls1 = await redisScriptCalls(ctx);
  for (const c of open) c.close();
  await Promise.all([p.destroy(), pub.destroy()]);
  if (arrivals.length !== clients) ctx.violations.add(name, `${clients - arrivals.length} clients never got the message`);
  return {
    transport,
    clients,
    ...arrivalTimes(arrivals),
    loopDelayP99Ms: after.eventLoopDelayMs.p99,
    loopDelayMaxMs: after.eventLoopDelayMs.max,
    serverCpuMs: round((after.cpuMicros.user + after.cpuMicros.system - cpu0) / 1000),
    ...(calls0 !== undefined && calls1 !== undefined ? { storeCalls: calls1 - calls0 } : {}),
  };
}

/** An open connection never settles by itself: a message that never comes must fail the run, not hang it. */
function withDeadline(p: Promise<unknown>, ms: number): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no message within ${ms} ms`)), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}
