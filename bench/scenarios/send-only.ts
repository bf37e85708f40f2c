/**
 * Send-only throughput: /send as fast as the gateway answers, round-robin over streams nobody
 * polls. CPU µs per /send; every accepted send must get the next seq of its stream.
 */
import { pool, round, send } from '../client.js';
import { procCpuMicros } from '../gateway.js';
import type { ScenarioContext } from './context.js';

export interface SendOnlyResult {
  sends: number;
  sendsPerSec: number;
  cpuUsPerSend: number;
  serverCpuPct: number;
  redisCpuUsPerSend?: number;
}

const SENDERS = 32;
const STREAMS = 1000;

let runs = 0;

export async function sendOnly(ctx: ScenarioContext, seconds: number, maxSends: number): Promise<SendOnlyResult> {
  const name = 'send-only';
  const run = runs++;
  const p = pool(ctx.gw.url, SENDERS);
  const lastSeq = new Array<number>(STREAMS).fill(0);
  let next = 0;
  let sends = 0;
  const cpu0 = await ctx.gw.cpuMicros();
  const rcpu0 = ctx.redis ? procCpuMicros(ctx.redis.pid) : 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  await Promise.all(
    Array.from({ length: SENDERS }, async () => {
      while (performance.now() < end && next < maxSends) {
        const i = next++ % STREAMS;
        try {
          const r = await send(p, `${ctx.tag}:s${run}:${i}`, { n: sends, t: 0 });
          // Sends to one stream are STREAMS apart, so never concurrent: each gets the next seq.
          if (r.seq !== lastSeq[i]! + 1 || r.duplicate) ctx.violations.add(name, `stream ${i}: seq ${r.seq} after ${lastSeq[i]}`);
          lastSeq[i] = r.seq;
          sends++;
        } catch (err) {
          ctx.violations.add(name, `send failed: ${(err as Error).message}`);
        }
      }
    }),
  );
  const window = (performance.now() - t0) / 1000;
  const cpu1 = await ctx.gw.cpuMicros();
  const rcpu1 = ctx.redis ? procCpuMicros(ctx.redis.pid) : 0;
  await p.destroy();
  return {
    sends,
    sendsPerSec: Math.round(sends / window),
    cpuUsPerSend: round((cpu1 - cpu0) / Math.max(sends, 1)),
    serverCpuPct: Math.round(((cpu1 - cpu0) / 1e6 / window) * 100),
    ...(ctx.redis ? { redisCpuUsPerSend: round((rcpu1 - rcpu0) / Math.max(sends, 1)) } : {}),
  };
}
