/**
 * Where each µs goes natively, pollgate and its peers side by side: the delivery and publish
 * scenarios of the peer comparison run against each target alone on core 0 while Linux `perf`
 * samples it (`cpu-clock`, on the same monotonic clock as the scenario's window), and the
 * samples inside each window are split by what ran: the kernel, V8's builtins, V8's runtime, the
 * code V8 compiled from JavaScript (ours, Node's and the libraries' alike), the GC, Node's C++,
 * libc and the HTTP parser. side-by-side.js splits by JavaScript file instead, but V8's CPU
 * profiler charges time to the JavaScript frame on top, so a system call's kernel time and the
 * time of a builtin look alike there; perf sees the machine. Not part of `npm run bench`; needs
 * `perf` (linux-perf) and the right to sample the target (root, or perf_event_paranoid <= 1):
 *
 *   node dist/bench/peers/native-split.js [--targets=pollgate-memory,socketio,faye] [--seconds=4] [--clients=1000] [--keep]
 *
 * --keep leaves the perf data for `perf report -i <file>` (with the targets' /tmp/perf-PID.map,
 * from --perf-basic-prof, JavaScript functions have names there).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { startRedisServer, type RedisServer } from '../../spec/support/redis.js';
import { readerToken, round, Violations } from '../client.js';
import { delivery, publishOnly, type MonotonicWindow } from './scenarios.js';
import { startTarget, TARGET_LABELS, targetList, type TargetName } from './targets.js';
import { option, runAsScript } from '../args.js';
import { machine } from '../report.js';

export const NATIVE_LAYERS = ['kernel', 'V8 builtins', 'V8 runtime and API', 'JIT code (JavaScript)', 'GC', "Node's C++ and others", 'libc', 'llhttp (HTTP parser)'] as const;
export type NativeLayer = (typeof NATIVE_LAYERS)[number];

// V8's collectors, by the names of their C++ classes and functions.
const GC_SYMBOL = /Scaveng|Heap::|MarkCompact|Marking|Marker|Sweep|Evacuat|RememberedSet|SlotSet|MemoryAllocator|MinorGC|GCTracer|PointersUpdat/;

/**
 * The layer of one sample, from its symbol, its object (dso) and whether it ran in the kernel.
 * JavaScript still interpreted runs in Ignition's handlers, which are builtins, and the optimizing
 * compilers' threads are V8's runtime here: in a warmed-up server both are small.
 */
export function nativeLayerOf(sym: string, dso: string, kernel: boolean): NativeLayer {
  if (kernel || dso === '[kernel.kallsyms]') return 'kernel';
  // Code V8 compiled at run time: named from the target's perf map, or an address in '[JIT] tid N'
  // or in memory no file backs ('[unknown]': in a Node process, V8's code space).
  if (dso.startsWith('[JIT]') || dso.endsWith('.map') || dso === '[unknown]') return 'JIT code (JavaScript)';
  if (GC_SYMBOL.test(sym)) return 'GC';
  if (sym.startsWith('Builtins_')) return 'V8 builtins';
  if (sym.startsWith('llhttp')) return 'llhttp (HTTP parser)';
  if (sym.startsWith('v8::')) return 'V8 runtime and API';
  if (/^libc[.-]/.test(dso.slice(dso.lastIndexOf('/') + 1))) return 'libc';
  return "Node's C++ and others";
}

export interface NativeSample {
  /** Seconds on CLOCK_MONOTONIC. */
  atS: number;
  /** CPU time the sample stands for, ns. */
  periodNs: number;
  layer: NativeLayer;
}

/**
 * The samples of `perf script -F time,period,ip,sym,dso`: each sample's time and period, then
 * the frame it stopped in, on the same line or (in data recorded with call graphs) as the first
 * of the lines below it, e.g.
 * `  1234.567890:    1001001 ffffffff8a1b2c3d __tcp_transmit_skb ([kernel.kallsyms])`.
 */
export function parsePerfScript(text: string): { samples: NativeSample[]; unparsed: number } {
  const samples: NativeSample[] = [];
  let unparsed = 0;
  let pending: { atS: number; periodNs: number } | undefined;
  const add = (frame: string) => {
    if (!pending) return;
    // The object in the last parentheses (which may hold some of their own: `(/x (deleted))`).
    const f = /^\s*([0-9a-f]+)\s+(.*?)\s*\(((?:[^()]|\([^()]*\))*)\)\s*$/.exec(frame);
    if (f) samples.push({ ...pending, layer: nativeLayerOf(f[2]!, f[3]!, /^ffff/.test(f[1]!)) });
    else unparsed++;
    pending = undefined;
  };
  for (const line of text.split('\n')) {
    const head = /^\s*(\d+\.\d+):\s+(\d+)\s*(.*)$/.exec(line);
    if (head) {
      if (pending) unparsed++;
      pending = { atS: Number(head[1]), periodNs: Number(head[2]) };
      if (head[3]) add(head[3]);
    } else if (pending && line.trim() !== '') {
      add(line);
    }
  }
  if (pending) unparsed++;
  return { samples, unparsed };
}

/** µs per operation by layer, of the samples inside `window`. */
export function splitWindow(samples: readonly NativeSample[], window: MonotonicWindow, ops: number): Record<NativeLayer, number> & { total: number } {
  const us = Object.fromEntries(NATIVE_LAYERS.map((l) => [l, 0])) as Record<NativeLayer, number>;
  let total = 0;
  for (const s of samples) {
    const atUs = s.atS * 1e6;
    if (atUs < window.fromUs || atUs > window.toUs) continue;
    us[s.layer] += s.periodNs / 1000;
    total += s.periodNs / 1000;
  }
  for (const l of NATIVE_LAYERS) us[l] = round(us[l] / ops, 1);
  return { ...us, total: round(total / ops, 1) };
}

interface PerfRecord {
  child: ChildProcess;
  exited: Promise<unknown>;
  /** What perf said on stderr (why it could not sample, say). */
  said(): string;
}

/**
 * perf sampling `pid` on the monotonic clock, into `file`; stop it with stopPerf. Resolves once
 * perf has run for a moment, or rejects with what it said when it could not start (no right to
 * sample, say): before the scenario's seconds are spent, not after.
 */
async function startPerf(pid: number, file: string): Promise<PerfRecord> {
  const child = spawn('perf', ['record', '-e', 'cpu-clock', '-F', '999', '-k', 'CLOCK_MONOTONIC', '-p', String(pid), '-o', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err = (err + c.toString()).slice(-2000)));
  const exited = once(child, 'exit');
  const early = await Promise.race([exited.then(() => true), new Promise<false>((r) => setTimeout(r, 300, false))]);
  const record = { child, exited, said: () => err.trim() };
  if (early) throw new Error(`perf record could not sample pid ${pid}: ${record.said()}`);
  return record;
}

async function stopPerf(perf: PerfRecord): Promise<void> {
  const { child } = perf;
  if (child.exitCode !== null || child.signalCode !== null) throw new Error(`perf record stopped early: ${perf.said()}`);
  child.kill('SIGINT');
  await perf.exited;
}

function perfScript(file: string): string {
  const r = spawnSync('perf', ['script', '-i', file, '-F', 'time,period,ip,sym,dso'], { maxBuffer: 1 << 30, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`perf script failed: ${r.stderr}`);
  return r.stdout;
}

/** One operation's split, beside the CPU per operation the process itself reported. */
type OpSplit = ReturnType<typeof splitWindow> & { cpuUs: number };

async function main(): Promise<void> {
  if (spawnSync('perf', ['--version']).status !== 0) {
    console.error('native-split needs Linux perf on the PATH (Debian: apt-get install linux-perf)');
    process.exit(1);
  }
  const targets = targetList(option('targets', 'pollgate-memory,socketio,faye'));
  const seconds = Number(option('seconds', '4'));
  const clients = Number(option('clients', '1000'));
  const keep = process.argv.includes('--keep');
  const out = fileURLToPath(new URL('../../../bench/results/native-split.json', import.meta.url));
  const tmp = mkdtempSync(join(tmpdir(), 'pollgate-native-split-'));
  const redis: RedisServer | undefined = targets.some((t) => t.endsWith('redis')) ? await startRedisServer() : undefined;
  const violations = new Violations();
  const token = await readerToken();
  const maps: string[] = [];
  const results: Partial<Record<TargetName, Record<'delivery' | 'publish', OpSplit>>> = {};
  try {
    for (const name of targets) {
      process.stderr.write(`[native-split] ${name}\n`);
      const target = await startTarget(name, { redis: redis as RedisServer, token, logDir: tmp, nodeFlags: ['--perf-basic-prof'] });
      const file = join(tmp, `${name}.perf.data`);
      // --perf-basic-prof's map of the target's compiled code, which perf script reads below.
      maps.push(`/tmp/perf-${target.gw.pid}.map`);
      const ctx = { target, violations, tag: `${name.replace(/[^a-z]/g, '')}${Date.now().toString(36)}` };
      let d;
      let p;
      try {
        const perf = await startPerf(target.gw.pid, file);
        try {
          d = await delivery(ctx, clients, 2.5, seconds);
          p = await publishOnly(ctx, 1000, 1, seconds);
        } finally {
          await stopPerf(perf);
        }
      } finally {
        await target.gw.stop();
      }
      const { samples, unparsed } = parsePerfScript(perfScript(file));
      if (unparsed > 0) process.stderr.write(`[native-split] ${name}: ${unparsed} samples whose frame did not parse, left out\n`);
      results[name] = {
        delivery: { ...splitWindow(samples, d.window, d.delivered), cpuUs: d.cpuUsPerDelivery },
        publish: { ...splitWindow(samples, p.window, p.publishes), cpuUs: p.cpuUsPerPublish },
      };
    }
  } finally {
    await redis?.stop();
    if (keep) process.stderr.write(`[native-split] perf data kept in ${tmp} (the maps: ${maps.join(' ')})\n`);
    else for (const f of [tmp, ...maps]) rmSync(f, { recursive: true, force: true });
  }
  writeFileSync(out, JSON.stringify({ machine: machine(), date: new Date().toISOString(), seconds, clients, results }, null, 2) + '\n');
  const names = targets.filter((t) => results[t]);
  for (const op of ['delivery', 'publish'] as const) {
    console.log(`\nµs per ${op === 'delivery' ? 'delivered message' : 'publish'}, sampled by perf, by what ran`);
    console.log(['layer'.padEnd(30), ...names.map((n) => TARGET_LABELS[n].padStart(18))].join(''));
    console.log(['CPU (process.cpuUsage)'.padEnd(30), ...names.map((n) => String(results[n]![op].cpuUs).padStart(18))].join(''));
    console.log(['sampled'.padEnd(30), ...names.map((n) => String(results[n]![op].total).padStart(18))].join(''));
    for (const l of NATIVE_LAYERS) console.log([`  ${l}`.padEnd(30), ...names.map((n) => String(results[n]![op][l]).padStart(18))].join(''));
  }
  violations.exitProcess();
}

runAsScript(import.meta.url, 'native-split', main);
