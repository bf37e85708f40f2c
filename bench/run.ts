/**
 * `npm run bench`: the gateway in its own process pinned to core 0, this load generator pinned to
 * core 1, real HTTP over loopback. Runs every scenario against the memory store, then Redis (a
 * private redis-server), checks every delivery, prints a table, writes bench/results/latest.json
 * and the latency chart; the same targeted, fan-out and memory measures over WebSocket and SSE;
 * last, the same four figures against Socket.IO and Faye (bench/peers/).
 * Exits non-zero if any message was lost, duplicated or reordered.
 *
 *   --quick            smaller sizes, for a smoke run (about a minute)
 *   --stores=memory    only these stores (memory,redis)
 *   --profile          only targeted throughput, with the gateway under --cpu-prof; prints where the time goes
 *   --scaling          only the Redis Cluster scaling bench (bench/scaling.ts, docs/SCALING.md)
 *   --peers            only the comparison with Socket.IO and Faye (bench/peers/run.ts; with --quick: smaller sizes);
 *                      its results go under `peers` in latest.json (quick.json), the rest of the file kept
 *   --out=DIR          results directory (default bench/results)
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRedisServer, type RedisServer } from '../spec/support/redis.js';
import { latencyChart } from './chart.js';
import { readerToken, Violations } from './client.js';
import { hasTaskset } from './gateway.js';
import { summarizeProfile } from './profile.js';
import { runScaling } from './scaling.js';
import { machine, printReport, type StoreResults } from './report.js';
import { peersChart, printPeers } from './peers/report.js';
import { runPeers, type PeersReport } from './peers/run.js';
import { withGateway as withGatewayOf, type ScenarioContext } from './scenarios/context.js';
import { connectedMemory, type ConnectedResult } from './scenarios/connected.js';
import { fanout } from './scenarios/fanout.js';
import { LONG_POLL_FLOOR, fanoutFloor, floor, type FanoutFloorResult, type FloorResult } from './scenarios/floor.js';
import { parkedMemory } from './scenarios/parked.js';
import { resume } from './scenarios/resume.js';
import { sendOnly } from './scenarios/send-only.js';
import { targeted, type TargetedResult } from './scenarios/targeted.js';
import type { StreamTransport } from './stream-client.js';
import { option } from './args.js';

type StoreKind = 'memory' | 'redis';

const args = process.argv.slice(2);
const flag = (name: string) => args.includes(`--${name}`);
const QUICK = flag('quick');
const PROFILE = flag('profile');
const STORES = option('stores', 'memory,redis').split(',') as StoreKind[];
const OUT = option('out', fileURLToPath(new URL('../../bench/results', import.meta.url)));
const TARGETED_CLIENTS = QUICK ? 200 : 1000;
/** Clients of the batching runs: 100 and 10 streams share the same closed-loop publisher. */
const BATCHING_CLIENTS = [100, 10];

/** Re-runs this script pinned to core 1 with a raised descriptor limit; the gateway gets core 0. */
function reexecPinned(): void {
  const pin = hasTaskset ? 'taskset -c 1 ' : '';
  const cmd = [process.execPath, fileURLToPath(import.meta.url), ...args].map((a) => `'${a}'`).join(' ');
  const child = spawn('bash', ['-c', `ulimit -n 65536 2>/dev/null || ulimit -n $(ulimit -Hn); exec ${pin}${cmd}`], {
    stdio: 'inherit',
    env: { ...process.env, POLLGATE_BENCH_CHILD: '1' },
  });
  child.once('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}

function openFileLimit(): number {
  const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
  return Number(line?.split(/\s+/)[3] ?? 1024);
}

function median<T>(items: T[], key: (t: T) => number): T {
  return [...items].sort((a, b) => key(a) - key(b))[Math.floor(items.length / 2)]!;
}

function withGateway<T>(
  store: StoreKind, redis: RedisServer | undefined, logLevel: string, tmp: string, fn: (ctx: ScenarioContext) => Promise<T>, cpuProfDir?: string, script?: string,
): Promise<T> {
  const logFile = join(tmp, `gateway-${store}-${logLevel}.log`);
  return withGatewayOf({ store, redis, logLevel, logFile, cpuProfDir, script, violations, token, maxClients: Math.max(100, openFileLimit() - 1000) }, fn);
}

/**
 * The targeted maximum against bench/long-poll-floor-server.ts: the same clients and checks, with
 * none of pollgate's own work. What a delivered long-poll message costs any Node server here, now.
 */
function longPollFloor(tmp: string): Promise<TargetedResult> {
  return withGateway('memory', undefined, 'warn', tmp, async (ctx) => {
    await targeted(ctx, TARGETED_CLIENTS, 0, 1.5, 'warmup');
    return targeted(ctx, TARGETED_CLIENTS, 0, QUICK ? 2 : 3, 'max');
  }, undefined, LONG_POLL_FLOOR);
}

/** Targeted throughput: the closed-loop maximum (three runs, median), then fractions of it. */
async function throughputLevels(ctx: ScenarioContext): Promise<{ max: TargetedResult; maxRuns: TargetedResult[]; levels: TargetedResult[] }> {
  await targeted(ctx, TARGETED_CLIENTS, 0, 1.5, 'warmup');
  const maxRuns: TargetedResult[] = [];
  for (let k = 0; k < (QUICK ? 1 : 3); k++) maxRuns.push(await targeted(ctx, TARGETED_CLIENTS, 0, QUICK ? 2 : 3, `max${k}`));
  const max = median(maxRuns, (r) => r.cpuUsPerDelivery);
  const levels: TargetedResult[] = [];
  const rates = new Set((QUICK ? [0.5] : [0.1, 0.3, 0.6]).map((f) => Math.max(10, Math.round((max.deliveriesPerSec * f) / 10) * 10)));
  for (const rate of rates) levels.push(await targeted(ctx, TARGETED_CLIENTS, rate, QUICK ? 2 : 2.5, `r${rate}`));
  return { max, maxRuns, levels: [...levels, max] };
}

/**
 * Batching: the closed-loop maximum with fewer clients, so each client's stream gets messages
 * faster than its poll comes back and one answer carries several (the issue asks that CPU per
 * message fall as the per-client rate rises). The 1,000-client point is the targeted maximum.
 */
async function batching(ctx: ScenarioContext): Promise<TargetedResult[]> {
  const runs: TargetedResult[] = [];
  // The gateway is warm from the targeted runs before these.
  for (const clients of BATCHING_CLIENTS) {
    runs.push(await targeted(ctx, clients, 0, QUICK ? 1.5 : 2, `batch-${clients}`));
  }
  return runs;
}

/** The targeted maximum with every client on one WebSocket or SSE connection (three runs, median). */
async function streamingMax(ctx: ScenarioContext, transport: StreamTransport): Promise<{ max: TargetedResult; runs: TargetedResult[] }> {
  await targeted(ctx, TARGETED_CLIENTS, 0, 1, 'warmup', transport);
  const runs: TargetedResult[] = [];
  // 2 s windows (long-poll: 3 s): about twice the deliveries per second, and the whole bench must stay under 5 minutes.
  for (let k = 0; k < (QUICK ? 1 : 3); k++) runs.push(await targeted(ctx, TARGETED_CLIENTS, 0, 2, `max${k}`, transport));
  return { max: median(runs, (r) => r.cpuUsPerDelivery), runs };
}

async function runStore(store: StoreKind, redis: RedisServer | undefined, tmp: string): Promise<StoreResults> {
  const log = (s: string) => process.stderr.write(`[${store}] ${s} (at ${Math.round(process.uptime())} s)\n`);
  const connections = await withGateway(store, redis, 'warn', tmp, async (ctx) => {
    const big = Math.min(QUICK ? 2000 : 10_000, ctx.maxClients);
    log('parked memory');
    const parked = [await parkedMemory(ctx, QUICK ? 500 : 1000), await parkedMemory(ctx, big)];
    log('broadcast fan-out');
    const fan = [await fanout(ctx, QUICK ? 500 : 1000), await fanout(ctx, Math.min(QUICK ? 1000 : 5000, ctx.maxClients))];
    log('resume after disconnect');
    const resumed = await resume(ctx, QUICK ? 100 : 200);
    log('WebSocket and SSE: broadcast fan-out');
    const bigFan = Math.min(QUICK ? 1000 : 5000, ctx.maxClients);
    fan.push(await fanout(ctx, bigFan, 'ws'), await fanout(ctx, bigFan, 'sse'));
    return { parked, fan, resumed, big };
  });
  // Each on a fresh gateway: after the scenarios above, new connections reuse pages the
  // allocator already holds, and RSS per connection comes out at a third of the heap it uses.
  log('WebSocket and SSE: open connections');
  const connected: ConnectedResult[] = [];
  // 5k, not 10k like the parked polls: the whole bench must stay under 5 minutes.
  const open = Math.min(QUICK ? 2000 : 5000, connections.big);
  for (const t of ['ws', 'sse'] as const) connected.push(await withGateway(store, redis, 'warn', tmp, (ctx) => connectedMemory(ctx, t, open)));
  // CPU per operation on a gateway of its own: after the 10k-connection scenarios above, the
  // memory store's per-operation CPU came out bimodal from run to run (docs/PERFORMANCE.md).
  return withGateway(store, redis, 'warn', tmp, async (ctx) => {
    const { parked, fan, resumed, big } = connections;
    log('send-only');
    await sendOnly(ctx, 1.5, 200_000); // warm-up: the first seconds are mostly JIT compilation
    const sendRuns = [];
    for (let k = 0; k < (QUICK ? 1 : 3); k++) sendRuns.push(await sendOnly(ctx, QUICK ? 1.5 : 2, 200_000));
    log('targeted throughput');
    const throughput = await throughputLevels(ctx);
    log(`batching: the maximum with ${BATCHING_CLIENTS.join(' and ')} clients`);
    const batched = await batching(ctx);
    log('targeted throughput over WebSocket and SSE');
    const streaming = { ws: await streamingMax(ctx, 'ws'), sse: await streamingMax(ctx, 'sse') };
    return {
      parked, fanout: fan, resume: resumed, connected, streaming,
      sendOnly: median(sendRuns, (r) => r.cpuUsPerSend), sendOnlyRuns: sendRuns,
      ...throughput,
      batching: batched,
      notes: big < (QUICK ? 2000 : 10_000) ? [`parked scaled down to ${big} (descriptor limit)`] : [],
    };
  });
}

async function profile(store: StoreKind, redis: RedisServer | undefined, tmp: string) {
  const dir = join(tmp, `prof-${store}`);
  mkdirSync(dir, { recursive: true });
  const result = await withGateway(store, redis, 'warn', tmp, async (ctx) => {
    await targeted(ctx, TARGETED_CLIENTS, 0, 1.5, 'warmup');
    return targeted(ctx, TARGETED_CLIENTS, 0, 5, 'profiled');
  }, dir);
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error('the gateway wrote no CPU profile');
  return { store, targeted: result, summary: summarizeProfile(join(dir, file)) };
}

/** The peer comparison on `redis` (or a redis-server of its own). */
async function peers(redis: RedisServer | undefined, tmp: string): Promise<PeersReport> {
  const own = redis ? undefined : await startRedisServer();
  try {
    return await runPeers({ quick: QUICK, redis: (redis ?? own)!, violations, token, logDir: tmp, maxClients: Math.max(100, openFileLimit() - 1000) });
  } finally {
    await own?.stop();
  }
}

/** `--peers`: only the comparison, written under `peers` in the results file (the rest of it kept). */
async function peersOnly(redis: RedisServer | undefined, tmp: string): Promise<void> {
  const report = { machine: machine(), date: new Date().toISOString(), quick: QUICK, ...(await peers(redis, tmp)) };
  const file = join(OUT, QUICK ? 'quick.json' : 'latest.json');
  let results: Record<string, unknown> = {};
  try {
    results = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch {
    // no earlier results: the file holds the comparison only
  }
  writeFileSync(file, JSON.stringify({ ...results, peers: report }, null, 2) + '\n');
  writeFileSync(join(OUT, QUICK ? 'quick-peers.svg' : 'peers.svg'), peersChart(report));
  printPeers(report);
}

const violations = new Violations();
let token = '';

async function main(): Promise<void> {
  // Several Redis processes and the stores in this one: nothing to pin.
  if (flag('scaling')) return runScaling();
  if (!process.env.POLLGATE_BENCH_CHILD) return reexecPinned();
  token = await readerToken();
  mkdirSync(OUT, { recursive: true });
  const tmp = mkdtempSync(join(tmpdir(), 'pollgate-bench-'));
  const started = Date.now();
  const redis = STORES.includes('redis') ? await startRedisServer() : undefined;
  try {
    if (flag('peers')) {
      await peersOnly(redis, tmp);
    } else if (PROFILE) {
      const profiles = [];
      for (const s of STORES) profiles.push(await profile(s, redis, tmp));
      writeFileSync(join(OUT, 'profile.json'), JSON.stringify({ machine: machine(), profiles }, null, 2) + '\n');
      for (const p of profiles) {
        console.log(`\n== ${p.store}: ${p.targeted.cpuUsPerDelivery} µs/delivery, ${p.targeted.deliveriesPerSec}/s; busy ${p.summary.busyMs} ms`);
        for (const a of p.summary.areas) console.log(`  ${String(a.pct).padStart(5)}%  ${a.area}`);
        console.log('  -- functions (self time)');
        for (const f of p.summary.functions) console.log(`  ${String(f.pct).padStart(5)}%  ${f.fn}  ${f.where}`);
      }
    } else {
      const floors: FloorResult[] = [];
      const longPollFloors: TargetedResult[] = [];
      const calibrate = async () => {
        process.stderr.write('[floor] bare node:http and Koa on this machine, now\n');
        floors.push(await floor('http', QUICK ? 5000 : 20_000), await floor('koa', QUICK ? 5000 : 20_000));
        process.stderr.write('[floor] the targeted maximum on a bare node:http long-poll server\n');
        longPollFloors.push(await longPollFloor(tmp));
      };
      await calibrate();
      process.stderr.write('[floor] bare node:http answering a broadcast\n');
      const fanoutFloors: FanoutFloorResult[] = QUICK ? [await fanoutFloor(1000)] : [await fanoutFloor(5000), await fanoutFloor(Math.min(10_000, openFileLimit() - 1000))];
      const results: Partial<Record<StoreKind, StoreResults>> = {};
      for (const s of STORES) results[s] = await runStore(s, redis, tmp);
      let infoLog: { warn: TargetedResult; info: TargetedResult } | undefined;
      if (!QUICK && STORES.includes('memory')) {
        process.stderr.write('[memory] request logging at info\n');
        const info = await withGateway('memory', redis, 'info', tmp, async (ctx) => {
          await targeted(ctx, TARGETED_CLIENTS, 0, 1.5, 'warmup');
          return targeted(ctx, TARGETED_CLIENTS, 0, 4, 'info');
        });
        infoLog = { warn: results.memory!.max, info };
      }
      await calibrate();
      process.stderr.write('[peers] pollgate beside Socket.IO and Faye\n');
      const peerResults = await peers(redis, tmp);
      const report = { machine: machine(), date: new Date().toISOString(), quick: QUICK, seconds: Math.round((Date.now() - started) / 1000), floors, longPollFloors, fanoutFloors, results, infoLog, peers: peerResults, violations: violations.list };
      writeFileSync(join(OUT, QUICK ? 'quick.json' : 'latest.json'), JSON.stringify(report, null, 2) + '\n');
      const colours: Record<StoreKind, string> = { memory: '#1f77b4', redis: '#d62728' };
      const series = STORES.map((s) => ({
        label: s,
        colour: colours[s],
        points: results[s]!.levels.map((l) => ({ x: l.deliveriesPerSec, p50: l.p50Ms, p90: l.p90Ms, p99: l.p99Ms })),
      }));
      writeFileSync(join(OUT, QUICK ? 'quick.svg' : 'latency-vs-load.svg'), latencyChart(`pollgate long-poll: latency vs load (${TARGETED_CLIENTS} clients, 1 core)`, series));
      writeFileSync(join(OUT, QUICK ? 'quick-peers.svg' : 'peers.svg'), peersChart(peerResults));
      printReport(report);
      printPeers(peerResults);
    }
  } finally {
    await redis?.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
  if (violations.list.length) {
    console.error(`\nFAILED: ${violations.list.length} correctness violations (loss, duplication, reordering or errors):`);
    for (const v of violations.list.slice(0, 30)) console.error(`  ${v}`);
    process.exit(1);
  }
  process.exit(0);
}

main().catch((err: Error) => {
  console.error(`bench failed: ${err.stack ?? err.message}`);
  process.exit(1);
});
