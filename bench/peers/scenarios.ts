/**
 * The four figures of issue 19's peer table, each against any target through its PeerDriver:
 *   delivery   CPU per delivered message: one subscriber per stream, a closed-loop publisher
 *   publish    CPU per publish with no subscribers
 *   broadcast  one publish to N subscribers parked on one stream: ms to 50/99/100%, loop delay
 *   parked     RSS and heap per parked subscriber
 * Every delivery is checked (per stream: n 0, 1, 2, ... exactly once) into the run's Violations.
 */
import { arrivalTimes, percentile, pool, round, type ArrivalTimes } from '../client.js';
import { procCpuMicros, sleep } from '../gateway.js';
import type { Payload } from './driver.js';
import { closedLoop, Deliveries, pacedLoop, subscribeAll, type PeerContext } from './subscribers.js';

/** Publishes in flight at once (closed loop), in the delivery and publish scenarios. */
export const IN_FLIGHT = 64;

export interface DeliveryResult {
  clients: number;
  seconds: number;
  delivered: number;
  deliveriesPerSec: number;
  cpuUsPerDelivery: number;
  serverCpuPct: number;
  redisCpuUsPerDelivery?: number;
  p50Ms: number;
  p99Ms: number;
  /** Payloads per response that carried any. */
  perResponse: number;
  /** The measured window on the monotonic clock (µs), which a V8 CPU profile's timestamps also use. */
  window: MonotonicWindow;
}

export interface MonotonicWindow {
  fromUs: number;
  toUs: number;
}

/** CLOCK_MONOTONIC in µs: the clock of process.hrtime and of V8's CPU profile timestamps. */
export function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

let runs = 0;
const streamNames = (ctx: PeerContext, kind: string, count: number) => {
  const run = runs++;
  return Array.from({ length: count }, (_, i) => `${ctx.tag}-${kind}${run}-${i}`);
};

/** Server CPU µs (and the redis-server's, for Redis targets) so far. */
async function cpuNow(ctx: PeerContext): Promise<{ server: number; redis: number }> {
  return { server: await ctx.target.gw.cpuMicros(), redis: ctx.target.redisPid ? procCpuMicros(ctx.target.redisPid) : 0 };
}

/** `rate` 0: the closed loop (IN_FLIGHT publishes outstanding); else that many publishes a second (pacedLoop). */
export async function delivery(ctx: PeerContext, clients: number, warmupS: number, seconds: number, rate = 0): Promise<DeliveryResult> {
  const name = `peers ${ctx.target.name} delivery`;
  // Order is checked per stream: two sends to one stream in flight at once have no order to check.
  if (clients < IN_FLIGHT) throw new Error(`the delivery scenario needs at least ${IN_FLIGHT} subscribers (one stream each, ${IN_FLIGHT} publishes in flight); got ${clients}`);
  const streams = streamNames(ctx, 'd', clients);
  const got = new Deliveries(name, streams, ctx.violations);
  const latencies: number[] = [];
  let measuring = false;
  let responses = 0;
  const subs = await subscribeAll(ctx, streams, (i, items, now) => {
    got.receive(i, items);
    if (!measuring) return;
    responses++;
    for (const it of items) latencies.push(now - it.t);
  }, (what) => ctx.violations.add(name, what));
  const pub = pool(ctx.target.gw.url, IN_FLIGHT);
  const published = new Array<number>(clients).fill(0);
  const publishOne = async (i: number) => {
    const n = published[i]!++;
    try {
      await ctx.target.driver.publish(pub, streams[i]!, { n, t: performance.now() });
    } catch (err) {
      ctx.violations.add(name, `publish failed: ${(err as Error).message}`);
    }
  };
  const drain = async (what: string) => {
    if (!(await got.drained(published))) ctx.violations.add(name, `${what}: not every publish was delivered within 20 s`);
  };
  try {
    // One payload per stream first (n 0), then the warm-up, then the measured window, each drained.
    const each = { k: 0 };
    await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
      while (each.k < clients) await publishOne(each.k++);
    }));
    await drain('priming');
    const order = { k: 0 };
    await closedLoop(clients, IN_FLIGHT, warmupS, publishOne, order);
    await drain('warm-up');
    const cpu0 = await cpuNow(ctx);
    const d0 = got.count;
    const fromUs = monotonicUs();
    const t0 = performance.now();
    measuring = true;
    await (rate > 0 ? pacedLoop(clients, IN_FLIGHT, seconds, rate, publishOne, order) : closedLoop(clients, IN_FLIGHT, seconds, publishOne, order));
    await drain('measured window');
    const window = (performance.now() - t0) / 1000;
    const cpu1 = await cpuNow(ctx);
    measuring = false;
    got.check(published);
    const delivered = got.count - d0;
    latencies.sort((a, b) => a - b);
    return {
      clients,
      seconds: round(window, 2),
      delivered,
      deliveriesPerSec: Math.round(delivered / window),
      cpuUsPerDelivery: round((cpu1.server - cpu0.server) / Math.max(delivered, 1)),
      serverCpuPct: Math.round(((cpu1.server - cpu0.server) / 1e6 / window) * 100),
      ...(ctx.target.redisPid ? { redisCpuUsPerDelivery: round((cpu1.redis - cpu0.redis) / Math.max(delivered, 1)) } : {}),
      p50Ms: round(percentile(latencies, 50), 2),
      p99Ms: round(percentile(latencies, 99), 2),
      perResponse: round(delivered / Math.max(responses, 1), 2),
      window: { fromUs, toUs: monotonicUs() },
    };
  } finally {
    await Promise.all([subs.close(), pub.destroy()]);
  }
}

export interface PublishResult {
  publishes: number;
  publishesPerSec: number;
  cpuUsPerPublish: number;
  serverCpuPct: number;
  redisCpuUsPerPublish?: number;
  window: MonotonicWindow;
}

/** Publishes round-robin over `streamCount` streams nobody subscribes to, IN_FLIGHT at once. */
export async function publishOnly(ctx: PeerContext, streamCount: number, warmupS: number, seconds: number): Promise<PublishResult> {
  const name = `peers ${ctx.target.name} publish`;
  const streams = streamNames(ctx, 'p', streamCount);
  const pub = pool(ctx.target.gw.url, IN_FLIGHT);
  const n = new Array<number>(streamCount).fill(0);
  const publishOne = async (i: number) => {
    try {
      await ctx.target.driver.publish(pub, streams[i]!, { n: n[i]!++, t: performance.now() });
    } catch (err) {
      ctx.violations.add(name, `publish failed: ${(err as Error).message}`);
    }
  };
  try {
    const order = { k: 0 };
    await closedLoop(streamCount, IN_FLIGHT, warmupS, publishOne, order);
    const cpu0 = await cpuNow(ctx);
    const fromUs = monotonicUs();
    const t0 = performance.now();
    const publishes = await closedLoop(streamCount, IN_FLIGHT, seconds, publishOne, order);
    const window = (performance.now() - t0) / 1000;
    const cpu1 = await cpuNow(ctx);
    return {
      publishes,
      publishesPerSec: Math.round(publishes / window),
      cpuUsPerPublish: round((cpu1.server - cpu0.server) / Math.max(publishes, 1)),
      serverCpuPct: Math.round(((cpu1.server - cpu0.server) / 1e6 / window) * 100),
      ...(ctx.target.redisPid ? { redisCpuUsPerPublish: round((cpu1.redis - cpu0.redis) / Math.max(publishes, 1)) } : {}),
      window: { fromUs, toUs: monotonicUs() },
    };
  } finally {
    await pub.destroy();
  }
}

export interface BroadcastResult extends ArrivalTimes {
  clients: number;
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
  serverCpuMs: number;
  /**
   * The load generator's own CPU over the same window (its one process, every thread). Close to
   * t100, the receiving side was busy the whole time: the figure is bounded by the clients'
   * work (parsing each answer, sending the next poll), not only by the server's.
   */
  loadGeneratorCpuMs: number;
}

/** `clients` subscribers parked on one stream, one publish: time until 50/99/100% have it. */
export async function broadcast(ctx: PeerContext, clients: number): Promise<BroadcastResult> {
  const name = `peers ${ctx.target.name} broadcast-${clients}`;
  const [stream] = streamNames(ctx, 'b', 1);
  const arrivals: number[] = [];
  const seen = new Uint8Array(clients);
  let t0 = 0;
  const subs = await subscribeAll(ctx, new Array<string>(clients).fill(stream!), (i, items: Payload[], now) => {
    if (items.length !== 1 || items[0]!.n !== 0 || seen[i]) ctx.violations.add(name, `subscriber ${i}: expected payload 0 once, got ${JSON.stringify(items)}`);
    if (!seen[i]) arrivals.push(now - t0);
    seen[i] = 1;
  }, (what) => ctx.violations.add(name, what));
  const pub = pool(ctx.target.gw.url, 1);
  try {
    await ctx.target.gw.stats(true);
    const cpu0 = await ctx.target.gw.cpuMicros();
    const ownCpu0 = process.cpuUsage();
    t0 = performance.now();
    await ctx.target.driver.publish(pub, stream!, { n: 0, t: t0 });
    const deadline = Date.now() + 30_000;
    while (arrivals.length < clients && Date.now() < deadline) await sleep(5);
    const ownCpu = process.cpuUsage(ownCpu0);
    const after = await ctx.target.gw.stats(true);
    if (arrivals.length !== clients) ctx.violations.add(name, `${clients - arrivals.length} subscribers never got the message`);
    return {
      clients,
      ...arrivalTimes(arrivals),
      loopDelayP99Ms: after.eventLoopDelayMs.p99,
      loopDelayMaxMs: after.eventLoopDelayMs.max,
      serverCpuMs: round((after.cpuMicros.user + after.cpuMicros.system - cpu0) / 1000),
      loadGeneratorCpuMs: round((ownCpu.user + ownCpu.system) / 1000),
    };
  } finally {
    await Promise.all([subs.close(), pub.destroy()]);
  }
}

export interface ParkedPeerResult {
  clients: number;
  baselineRssMB: number;
  kbPerParked: number;
  kbHeapPerParked: number;
  parkSeconds: number;
}

/** `clients` subscribers parked, each on its own stream: RSS and heap (after a GC) over the idle baseline, per subscriber. */
export async function parked(ctx: PeerContext, clients: number): Promise<ParkedPeerResult> {
  const name = `peers ${ctx.target.name} parked-${clients}`;
  const base = await ctx.target.gw.stats(false, true);
  const t0 = performance.now();
  const subs = await subscribeAll(ctx, streamNames(ctx, 'm', clients), (i, items) => {
    ctx.violations.add(name, `subscriber ${i} got ${items.length} payloads on a stream nobody publishes to`);
  }, (what) => ctx.violations.add(name, what));
  const parkSeconds = (performance.now() - t0) / 1000;
  try {
    await sleep(300);
    const held = await ctx.target.gw.stats(false, true);
    return {
      clients,
      baselineRssMB: round(base.memory.rss / 1024 / 1024),
      kbPerParked: round((held.memory.rss - base.memory.rss) / 1024 / clients, 2),
      kbHeapPerParked: round((held.memory.heapUsed - base.memory.heapUsed) / 1024 / clients, 2),
      parkSeconds: round(parkSeconds, 2),
    };
  } finally {
    await subs.close();
  }
}
