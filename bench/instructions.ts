/**
 * Instructions per unit of work, counted by valgrind's callgrind. CPU time on this shared machine
 * moves 10-25% between runs of one build (and 2x between days); the instructions outside JIT
 * compilation and GC move by 2-3%, so that is how a change is judged (two builds side by side).
 * Not part of `npm run bench`: under valgrind the gateway runs ~50x slower (a run takes 5-15
 * minutes; run one at a time with 1,000 clients, or their polls time out).
 *
 *   node dist/bench/instructions.js [--store=memory|redis] [--n=2000] [--warmup=5000] [--clients=1000] [--node-flags=a,b] [--only=floor,send,delivery] [--keep]
 *                                   [--long-poll-floor] [--config=FILE] [--peer=socketio|faye]
 *
 * Each measure warms up with `warmup` operations, zeroes the counters (`callgrind_control -z`), runs n
 * operations one at a time (no batching, no concurrency: the same work every run), dumps the
 * counters (`callgrind_control -d`) and divides. All threads count (GC helpers included).
 *   floor:    a bare node:http server answering POST /send (bench/floor-server.ts)
 *   send:     POST /send to streams nobody polls
 *   delivery: POST /send to a stream whose client is parked, the poll's answer, and the
 *             client's next poll parking again (the long-poll cycle of one message)
 * With --long-poll-floor, send and delivery count bench/long-poll-floor-server.ts in the
 * gateway's place: the same cycle with none of pollgate's own work.
 *
 * With --peer=socketio or --peer=faye, send and delivery count that peer of the comparison
 * (bench/peers: Socket.IO polling or Faye long-polling, on the memory store's terms), driven
 * through its own protocol by the comparison's driver: the peers' CPU per delivery without this
 * machine's noise, beside pollgate's. Run pollgate and the peer with the same --clients (200
 * keeps every client's turn well inside a 25 s hold under valgrind). Socket.IO's pings are moved
 * to every 10 minutes here: at its 25 s default, under valgrind's slowness, pings and pongs
 * would outnumber the deliveries counted.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Pool } from 'undici';
import { poll, pool, readerToken, send, sharedAbort } from './client.js';
import { GatewayProcess, type Stats } from './gateway.js';
import { LONG_POLL_FLOOR, floorRequest, startFloorServer } from './scenarios/floor.js';
import { startRedisServer, type RedisServer } from '../spec/support/redis.js';
import { option } from './args.js';
import { connection, type PeerDriver, type Subscription } from './peers/driver.js';
import { bayeuxDriver } from './peers/bayeux.js';
import { socketIoDriver } from './peers/engine-io.js';
import { FAYE, SOCKETIO } from './peers/targets.js';

const args = process.argv.slice(2);
const store = option('store', 'memory') as 'memory' | 'redis';
const n = Number(option('n', '2000'));
/** Operations before the counted window: fewer leave JIT compilation in the count (a bare request counts 435k at 1,000, 80k at 3,000). */
const warmup = Number(option('warmup', '5000'));
const only = option('only', 'floor,send,delivery').split(',');
/** Keep callgrind's dumps (for callgrind_annotate: where the instructions go, by native function). */
const keep = args.includes('--keep');
/** e.g. --node-flags=--trace-gc,--max-semi-space-size=32 (the gateway's log file gets --trace-gc's lines). */
const nodeFlags = option('node-flags', '').split(',').filter(Boolean);
const longPollFloor = args.includes('--long-poll-floor');
/** The gateway's POLLGATE_CONFIG instead of bench/gateway-config.json (bench/rate-limits-on.json: rate limits measured on). */
const config = option('config', '');
/**
 * Clients taking turns, each parked on its own stream: by the time a client's turn comes round
 * again its next poll has long parked. 1,000 as in the bench's targeted scenario, so each parked
 * poll lives as much allocation as there (what decides whether the GC copies and promotes it).
 */
const CLIENTS = Number(option('clients', '1000'));
/** A peer of the comparison counted in pollgate's place (see above). */
const peer = option('peer', '');
if (peer && peer !== 'socketio' && peer !== 'faye') throw new Error(`--peer must be socketio or faye, not "${peer}"`);
if (peer && (longPollFloor || store !== 'memory')) throw new Error('--peer counts a peer on its own terms: not with --long-poll-floor or --store=redis');
const PEER: { script: string; driver: PeerDriver } | undefined = peer === 'socketio' ? { script: SOCKETIO, driver: socketIoDriver } : peer === 'faye' ? { script: FAYE, driver: bayeuxDriver } : undefined;

const outDir = mkdtempSync(join(tmpdir(), 'pollgate-callgrind-'));
const callgrind = ['valgrind', '--tool=callgrind', `--callgrind-out-file=${join(outDir, 'cg.%p')}`];
/**
 * valgrind and callgrind_control name their shared pipe after these, so both sides must see the
 * same. HOST is also the gateway's listen address (127.0.0.1 in the bench).
 */
const VGDB_ENV = { LOGNAME: 'pollgate-bench', HOST: '127.0.0.1' };

/** Processes under valgrind: killed when this one exits, however it exits (they would idle on for ever). */
const underValgrind = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of underValgrind) child.kill('SIGKILL');
});
// Ctrl-C: exit through the handler above.
process.on('SIGINT', () => process.exit(130));

function control(flag: '-z' | '-d', pid: number): void {
  const r = spawnSync('callgrind_control', [flag, String(pid)], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, ...VGDB_ENV } });
  // callgrind_control exits 0 even when it could not reach the process.
  if (r.status !== 0 || /error|failed/i.test(r.stderr)) throw new Error(`callgrind_control ${flag} ${pid}: ${r.stderr || r.stdout}`);
}

interface Count {
  total: number;
  /** Instructions by area (AREAS), from callgrind_annotate's self cost per function. */
  areas: Map<string, number>;
}

/**
 * Where instructions go, by the native function that ran them. JavaScript compiled by V8 has no
 * symbol (callgrind shows its address): that is "our JS and Node's". Compilation is counted apart,
 * because a window can still hold some (V8 keeps optimizing for tens of thousands of requests).
 */
const AREAS: [string, RegExp][] = [
  ['JIT compilation', /compiler::|[Mm]aglev|turboshaft|Deoptimi|interpreter::|baseline::|Parser|AstNode|Bytecode|Zone::|Compile|OptimizedCompilation/],
  ['garbage collection', /Scaveng|Marking|Sweep|MemoryChunk|Evacuat|Compact|ObjectCache|GCTracer|Heap::|SizeFromMap|ActiveSystemPages|RememberedSet|SlotSet|Worklist|heap::base|WeakObjects|MinorMC|Page::|LargeObject|RecordWrite|MarkingBarrier|cppgc/],
  ['OpenSSL (hashes)', /sha256|SHA256|EVP_|ossl_|OPENSSL|CRYPTO_|OSSL/],
  ['llhttp (HTTP parsing)', /llhttp/],
  ['libuv', /\buv_|\buv__/],
  ['libc (malloc, memcpy)', /libc\.so|libstdc|ld-linux/],
  ['JavaScript (JIT code)', /^\?\?\?:0x/],
  ['V8 builtins', /Builtins_/],
  ['Node C++', /node::/],
  ['V8 runtime', /v8::|Runtime_/],
];
/**
 * Frames at the root of a thread, which callgrind_annotate lists with the whole thread's cost
 * (JIT code called from them has no frame of its own); their own cost is negligible.
 */
const ROOTS = /\(below main\)|__libc_start_main|:main \[|node::Start\(|NodeMainInstance::Run|SpinEventLoop|clone\.S|start_thread|ld-linux-x86-64\.so\.2\]$/;

function areasOf(file: string): Map<string, number> {
  const r = spawnSync('callgrind_annotate', ['--inclusive=no', '--threshold=100', file], { encoding: 'utf8', maxBuffer: 256 << 20 });
  const areas = new Map<string, number>();
  for (const line of r.stdout.split('\n')) {
    const m = /^\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)$/.exec(line);
    if (!m) continue;
    const count = Number(m[1]!.replaceAll(',', ''));
    const name = m[2]!;
    if (name === 'PROGRAM TOTALS' || ROOTS.test(name)) continue;
    const area = AREAS.find(([, re]) => re.test(name))?.[0] ?? 'other';
    areas.set(area, (areas.get(area) ?? 0) + count);
  }
  return areas;
}

/** Instructions counted between the last zero and this dump. */
function dumpCount(pid: number): Count {
  const before = new Set(readdirSync(outDir));
  control('-d', pid);
  const file = readdirSync(outDir).find((f) => f.startsWith(`cg.${pid}.`) && !before.has(f));
  if (!file) throw new Error(`no callgrind dump for ${pid} in ${outDir}`);
  const m = /^(?:summary|totals): (\d+)/m.exec(readFileSync(join(outDir, file), 'utf8'));
  if (!m) throw new Error(`no total in ${file}`);
  if (keep) console.log(`  (callgrind dump: ${join(outDir, file)})`);
  const total = Number(m[1]);
  return { total, areas: areasOf(join(outDir, file)) };
}

/** Runs `run(warmup)` (the same work, so the JIT has mostly settled), then counts `run(n)`. */
async function window(pid: number, run: (count: number) => Promise<void>): Promise<Count> {
  await run(warmup);
  control('-z', pid);
  await run(n);
  return dumpCount(pid);
}

async function floor(): Promise<Count> {
  const { port, child } = await startFloorServer('http', { wrapper: callgrind, env: VGDB_ENV, onSpawn: (c) => underValgrind.add(c) });
  try {
    const p = pool(`http://127.0.0.1:${port}`, 1);
    const total = await window(child.pid!, async (count) => {
      for (let k = 0; k < count; k++) await floorRequest(p);
    });
    await p.destroy();
    return total;
  } finally {
    child.kill('SIGKILL');
  }
}

async function withGatewayUnderValgrind<T>(redis: RedisServer | undefined, fn: (gw: GatewayProcess) => Promise<T>): Promise<T> {
  const gw = await GatewayProcess.start({
    redisUrl: redis?.url ?? '', logLevel: 'warn', logFile: join(outDir, 'gateway.log'), wrapper: callgrind, startTimeoutMs: 300_000,
    extraEnv: { ...VGDB_ENV, ...(config ? { POLLGATE_CONFIG: config } : {}), ...(PEER ? { PEER_PING_INTERVAL_MS: '600000', PEER_PING_TIMEOUT_MS: '600000' } : {}) }, nodeFlags,
    script: longPollFloor ? LONG_POLL_FLOOR : PEER?.script,
    onSpawn: (child) => underValgrind.add(child),
  });
  try {
    return await fn(gw);
  } finally {
    gw.child.kill('SIGKILL');
    await gw.stop();
  }
}

async function sendOnly(gw: GatewayProcess): Promise<Count> {
  const p = pool(gw.url, 1);
  let round = 0;
  const total = await window(gw.pid, async (count) => {
    const r = round++;
    for (let k = 0; k < count; k++) {
      if (PEER) await PEER.driver.publish(p, `i-send-${r}-${k % 100}`, { n: k, t: 0 });
      else await send(p, `i:send:${r}:${k % 100}`, { n: k, t: 0 });
    }
  });
  await p.destroy();
  return total;
}

async function delivery(gw: GatewayProcess): Promise<Count> {
  const token = await readerToken();
  const pub = pool(gw.url, 1);
  const conns = pool(gw.url, CLIENTS);
  const streams = Array.from({ length: CLIENTS }, (_, i) => `i:deliver:${i}`);
  const arrivals = streams.map(() => new Arrivals());
  const stop = sharedAbort();
  for (const s of streams) await send(pub, s, { n: 0, t: 0 }); // each client then holds a real position
  const loops: Promise<void>[] = [];
  // A chunk at a time: a thousand connects at once overflow the listen backlog of a gateway under valgrind.
  for (let i = 0; i < CLIENTS; i += 50) {
    const chunk = streams.slice(i, i + 50).map((s, k) => pollLoop(conns, token, s, stop.signal, arrivals[i + k]!));
    loops.push(...chunk);
    await Promise.all(arrivals.slice(i, i + 50).map((a) => a.next()));
  }
  const total = await countDeliveries(gw, streams, arrivals, (stream, k) => send(pub, stream, { n: k, t: 0 }));
  stop.abort();
  await Promise.allSettled(loops);
  await Promise.all([pub.destroy(), conns.destroy()]);
  return total;
}

/**
 * Once every client is parked, counts the delivery cycle: a publish to one client's stream at a
 * time, taking turns, each awaited until that client has it; the window ends once all parked again.
 */
async function countDeliveries(gw: GatewayProcess, streams: readonly string[], arrivals: readonly Arrivals[], publish: (stream: string, k: number) => Promise<unknown>): Promise<Count> {
  const allParked = (s: Stats) => s.parkedPolls === CLIENTS;
  await gw.waitFor('clients to park', allParked, 120_000);
  return window(gw.pid, async (count) => {
    for (let k = 0; k < count; k++) {
      const i = k % CLIENTS;
      const got = arrivals[i]!.next();
      await publish(streams[i]!, k);
      await got;
    }
    await gw.waitFor('clients to park again', allParked, 120_000);
  });
}

/** delivery() for a peer: its clients subscribe through its driver, one connection each. */
async function peerDelivery(gw: GatewayProcess, driver: PeerDriver): Promise<Count> {
  const pub = pool(gw.url, 1);
  const streams = Array.from({ length: CLIENTS }, (_, i) => `i-deliver-${i}`);
  const arrivals = streams.map(() => new Arrivals());
  const stop = sharedAbort();
  const conns = streams.map(() => connection(gw.url));
  const subs: Subscription[] = [];
  const problem = (what: string) => {
    if (stop.signal.aborted) return;
    // The window would wait for this client for ever: fail the run instead.
    console.error(what);
    process.exit(1);
  };
  for (let i = 0; i < CLIENTS; i += 50) {
    for (let k = i; k < Math.min(CLIENTS, i + 50); k++) {
      subs.push(driver.subscribe(conns[k]!, streams[k]!, { onData: (items) => items.forEach(() => arrivals[k]!.arrived()), onProblem: problem }, stop.signal));
    }
    await Promise.all(subs.slice(i).map((s) => s.ready));
  }
  const total = await countDeliveries(gw, streams, arrivals, (stream, k) => driver.publish(pub, stream, { n: k, t: 0 }));
  stop.abort();
  await Promise.allSettled(subs.map((s) => s.done));
  await Promise.all([pub.destroy(), ...conns.map((c) => c.destroy())]);
  return total;
}

/** Polls that timed out (each one more request in the count): should stay 0. */
let timedOut = 0;

/** The next poll answer that carries messages, as a promise. */
class Arrivals {
  private waiting?: () => void;
  private early = 0;
  next(): Promise<void> {
    if (this.early > 0) {
      this.early--;
      return Promise.resolve();
    }
    return new Promise((resolve) => (this.waiting = resolve));
  }
  arrived(): void {
    const w = this.waiting;
    this.waiting = undefined;
    if (w) w();
    else this.early++;
  }
}

async function pollLoop(p: Pool, token: string, stream: string, signal: AbortSignal, arrivals: Arrivals): Promise<void> {
  let cursor: string | undefined;
  while (!signal.aborted) {
    try {
      // The longest hold the gateway allows: under valgrind a thousand clients take their turns slowly.
      const a = await poll(p, token, { streams: stream, cursor, since: 'earliest', timeoutS: 55, signal });
      cursor = a.cursor;
      if (a.messages.length === 0) {
        timedOut++;
        continue;
      }
      if (a.messages.length !== 1) throw new Error(`${stream}: ${a.messages.length} messages in one answer (expected 1)`);
      arrivals.arrived();
    } catch (err) {
      if (signal.aborted) return;
      // The window would wait for this client for ever: fail the run instead.
      console.error(`${stream}: ${(err as Error).message}`);
      process.exit(1);
    }
  }
}

async function main(): Promise<void> {
  const results: Record<string, { perOp: number; perOpWithoutCompilation: number; perOpWork: number; areas: Record<string, number> }> = {};
  const show = (name: string, c: Count) => {
    const per = (v: number) => Math.round(v / n);
    const compiling = c.areas.get('JIT compilation') ?? 0;
    const gc = c.areas.get('garbage collection') ?? 0;
    const areas = Object.fromEntries([...c.areas].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, per(v)]));
    // Compilation and GC depend on timing (background threads, heuristics on time): under valgrind
    // they vary by tens of percent between runs of one build. The rest moves by 2-3%.
    results[name] = { perOp: per(c.total), perOpWithoutCompilation: per(c.total - compiling), perOpWork: per(c.total - compiling - gc), areas };
    const f = (v: number) => per(v).toLocaleString('en');
    console.log(`${name}: ${f(c.total)} instructions; ${f(c.total - compiling)} without JIT compilation; ${f(c.total - compiling - gc)} without compilation and GC (the part that repeats best)`);
    for (const [k, v] of Object.entries(areas)) console.log(`    ${k.padEnd(24)} ${v.toLocaleString('en').padStart(9)}`);
  };
  if (only.includes('floor')) show('floor: bare node:http request', await floor());
  if (only.includes('send') || only.includes('delivery')) {
    const redis = store === 'redis' && !PEER ? await startRedisServer() : undefined;
    try {
      await withGatewayUnderValgrind(redis, async (gw) => {
        const who = longPollFloor ? 'long-poll floor' : PEER ? peer : store;
        if (only.includes('send')) show(`${who}: per /send`, await sendOnly(gw));
        if (only.includes('delivery')) show(`${who}: per delivery (send + answer + re-park)`, await (PEER ? peerDelivery(gw, PEER.driver) : delivery(gw)));
      });
    } finally {
      await redis?.stop();
    }
  }
  if (timedOut) console.log(`(${timedOut} polls timed out and were repeated: the count holds those requests too)`);
  console.log(JSON.stringify({ store, peer: peer || undefined, n, warmup, clients: CLIENTS, nodeFlags, timedOut, results }));
}

main()
  .then(() => keep || rmSync(outDir, { recursive: true, force: true }))
  .catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
