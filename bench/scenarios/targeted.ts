/**
 * Targeted throughput: each client receives its own stream (long-polling it in a loop with its
 * cursor, or subscribed over one WebSocket or SSE connection) while a publisher sends
 * round-robin over HTTP, either at a fixed rate (open loop) or as fast as the gateway answers
 * (closed loop, `rate` 0). Every message is checked: per stream, seqs arrive exactly once and in
 * order, every accepted send is delivered, and each body is the one that was sent.
 */
import type { Pool } from 'undici';
import { percentile, poll, pool, round, send, sharedAbort, type Message } from '../client.js';
import { procCpuMicros, sleep } from '../gateway.js';
import { openInChunks, openStream, type Transport } from '../stream-client.js';
import { parkInChunks, redisScriptCalls, type ScenarioContext } from './context.js';

export interface TargetedResult {
  transport: Transport;
  /** Offered messages/s; 0 = as fast as the gateway answers. */
  rate: number;
  clients: number;
  seconds: number;
  delivered: number;
  deliveriesPerSec: number;
  sendsPerSec: number;
  cpuUsPerDelivery: number;
  serverCpuPct: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Messages per poll answer, WebSocket frame or SSE chunk that carried any. */
  messagesPerResponse: number;
  storeCallsPerDelivery?: number;
  redisCpuUsPerDelivery?: number;
  /** Largest backlog of sends the open-loop publisher could not issue on time (in-flight cap). */
  lateSends: number;
}

const MAX_IN_FLIGHT = 256;
const CLOSED_LOOP_SENDERS = 32;

interface ClientState {
  last: number;
  /** data.n received for each seq (index = seq). */
  got: number[];
}

/** Called around the measured window only (after set-up and priming, before the clients stop). */
export interface WindowHooks {
  started?(): Promise<void>;
  ended?(): Promise<void>;
}

export async function targeted(
  ctx: ScenarioContext, clients: number, rate: number, seconds: number, label: string, transport: Transport = 'poll', hooks: WindowHooks = {},
): Promise<TargetedResult> {
  const name = `targeted-${transport === 'poll' ? '' : `${transport}-`}${label}`;
  const streams = Array.from({ length: clients }, (_, i) => `${ctx.tag}:t:${transport}:${label}:${i}`);
  const pub = pool(ctx.gw.url, rate === 0 ? CLOSED_LOOP_SENDERS : MAX_IN_FLIGHT);
  const state: ClientState[] = streams.map(() => ({ last: 0, got: [] }));
  const expected: number[][] = streams.map(() => []);
  const accepted = new Array<number>(clients).fill(0);
  const latencies: number[] = [];
  let responses = 0;
  let carried = 0;

  const receive = (i: number, a: Message[], now: number) => {
    const st = state[i]!;
    for (const m of a) {
      if (m.seq !== st.last + 1) ctx.violations.add(name, `${streams[i]}: got seq ${m.seq} after ${st.last} (loss, duplicate or reorder)`);
      st.last = Math.max(st.last, m.seq);
      st.got[m.seq] = m.data.n;
    }
    if (a.length) {
      responses++;
      carried += a.length;
      for (const m of a) if (m.data.n > 0) latencies.push(now - m.data.t);
    }
  };
  const stopClients = await startClients(ctx, transport, streams, name, receive);
  // Prime each stream with one message (n 0) so every client holds a real (epoch, seq) position,
  // as in steady state; a stream's first message is a special case (no position yet).
  await Promise.all(streams.map(async (s, i) => {
    const r = await send(pub, s, { n: 0, t: 0 });
    expected[i]![r.seq] = 0;
    accepted[i]!++;
  }));
  if (!(await waitUntil(() => state.every((s) => s.last >= 1), 30_000))) throw new Error(`${name}: priming messages were not delivered`);
  if (transport === 'poll') await ctx.gw.waitFor(`${clients} primed pollers to park again`, (s) => s.parkedPolls >= clients, 30_000);
  responses = 0;
  carried = 0;

  await hooks.started?.();
  const cpu0 = await ctx.gw.cpuMicros();
  const calls0 = await redisScriptCalls(ctx);
  const rcpu0 = ctx.redis ? procCpuMicros(ctx.redis.pid) : 0;
  const t0 = performance.now();
  let next = 0;
  const sendOne = async () => {
    const k = next++;
    const i = k % clients;
    const n = Math.floor(k / clients) + 1;
    try {
      const r = await send(pub, streams[i]!, { n, t: performance.now() });
      expected[i]![r.seq] = n;
      accepted[i]!++;
    } catch (err) {
      ctx.violations.add(name, `send failed: ${(err as Error).message}`);
    }
  };
  const lateSends = rate === 0 ? await closedLoop(sendOne, t0 + seconds * 1000) : await openLoop(sendOne, rate, t0, seconds);
  const sendSeconds = (performance.now() - t0) / 1000;
  const sent = accepted.reduce((a, b) => a + b, 0);

  const drained = await waitUntil(() => state.every((s, i) => s.last >= accepted[i]!), 20_000);
  const t1 = performance.now();
  const cpu1 = await ctx.gw.cpuMicros();
  const calls1 = await redisScriptCalls(ctx);
  const rcpu1 = ctx.redis ? procCpuMicros(ctx.redis.pid) : 0;
  await hooks.ended?.();
  await Promise.all([stopClients(), pub.destroy()]);

  if (!drained) ctx.violations.add(name, 'not every accepted message was delivered within 20 s');
  let delivered = 0;
  state.forEach((s, i) => {
    delivered += s.last - 1; // the priming message is outside the measured window
    if (s.last !== accepted[i]) ctx.violations.add(name, `${streams[i]}: ${accepted[i]} accepted, ${s.last} delivered`);
    for (let seq = 1; seq <= s.last; seq++) {
      if (s.got[seq] !== expected[i]![seq]) ctx.violations.add(name, `${streams[i]} seq ${seq}: body n=${s.got[seq]}, sent n=${expected[i]![seq]}`);
    }
  });
  latencies.sort((a, b) => a - b);
  const window = (t1 - t0) / 1000;
  return {
    transport,
    rate,
    clients,
    seconds: round(window, 2),
    delivered,
    deliveriesPerSec: Math.round(delivered / window),
    sendsPerSec: Math.round(sent / sendSeconds),
    cpuUsPerDelivery: round((cpu1 - cpu0) / Math.max(delivered, 1)),
    serverCpuPct: Math.round(((cpu1 - cpu0) / 1e6 / window) * 100),
    p50Ms: round(percentile(latencies, 50), 2),
    p90Ms: round(percentile(latencies, 90), 2),
    p99Ms: round(percentile(latencies, 99), 2),
    maxMs: round(latencies[latencies.length - 1] ?? NaN, 2),
    messagesPerResponse: round(carried / Math.max(responses, 1), 2),
    ...(calls0 !== undefined && calls1 !== undefined ? { storeCallsPerDelivery: round((calls1 - calls0) / Math.max(delivered, 1), 2) } : {}),
    ...(ctx.redis ? { redisCpuUsPerDelivery: round((rcpu1 - rcpu0) / Math.max(delivered, 1)) } : {}),
    lateSends,
  };
}

/** Starts every client (parked, or subscribed); returns what stops them all. */
async function startClients(
  ctx: ScenarioContext, transport: Transport, streams: string[], name: string,
  receive: (i: number, messages: Message[], now: number) => void,
): Promise<() => Promise<void>> {
  const conns = pool(ctx.gw.url, streams.length);
  if (transport === 'poll') {
    const stop = sharedAbort();
    const loops = await parkInChunks(ctx, streams.length, (i) => pollLoop(ctx, conns, streams[i]!, stop.signal, name, (a, now) => receive(i, a, now)));
    return async () => {
      stop.abort();
      await Promise.allSettled(loops);
      await conns.destroy();
    };
  }
  const onProblem = (what: string) => ctx.violations.add(name, what);
  const open = await openInChunks(streams.length, (i) => openStream(transport, ctx.gw.url, ctx.token, streams[i]!, { onMessages: (a, now) => receive(i, a, now), onProblem }, conns));
  return async () => {
    for (const c of open) c.close();
    await conns.destroy();
  };
}

async function pollLoop(
  ctx: ScenarioContext, p: Pool, stream: string, signal: AbortSignal, name: string,
  onMessages: (m: Message[], now: number) => void,
): Promise<void> {
  let cursor: string | undefined;
  while (!signal.aborted) {
    let a;
    try {
      a = await poll(p, ctx.token, { streams: stream, cursor, since: 'earliest', timeoutS: 25, signal });
    } catch (err) {
      if (!signal.aborted) ctx.violations.add(name, `poll failed: ${(err as Error).message}`);
      return;
    }
    const now = performance.now();
    if (a.gaps || a.resets) ctx.violations.add(name, `${stream}: unexpected gap or reset ${JSON.stringify(a)}`);
    onMessages(a.messages, now);
    cursor = a.cursor;
  }
}

async function closedLoop(sendOne: () => Promise<void>, end: number): Promise<number> {
  await Promise.all(
    Array.from({ length: CLOSED_LOOP_SENDERS }, async () => {
      while (performance.now() < end) await sendOne();
    }),
  );
  return 0;
}

/** Issues sends at `rate`/s on a 5 ms tick, never more than MAX_IN_FLIGHT at once. */
async function openLoop(sendOne: () => Promise<void>, rate: number, t0: number, seconds: number): Promise<number> {
  let issued = 0;
  let late = 0;
  let inFlight = 0;
  const pending = new Set<Promise<void>>();
  const total = Math.round(rate * seconds);
  while (issued < total) {
    const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * rate));
    while (issued < due) {
      if (inFlight >= MAX_IN_FLIGHT) {
        late = Math.max(late, due - issued);
        break;
      }
      issued++;
      inFlight++;
      const s = sendOne().finally(() => {
        inFlight--;
        pending.delete(s);
      });
      pending.add(s);
    }
    await sleep(5);
  }
  await Promise.all(pending);
  return late;
}

async function waitUntil(ok: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}
