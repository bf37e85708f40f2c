/**
 * Where each µs goes, pollgate and its peers side by side (issue 19: "profile pollgate and that
 * peer side by side on the same scenario"). Each target runs alone on core 0 under --cpu-prof;
 * the delivery and publish scenarios of the peer comparison run against it, and the samples
 * inside each measured window are split into layers and divided by the window's operations:
 * µs per delivered message (and per publish) spent by the kernel's socket writes, Node's HTTP,
 * the framework (Koa and koa-router; Engine.IO and Socket.IO; Faye), the server's own code,
 * its other libraries, and the GC. Profiling inflates every figure (about 1.3x); compare within
 * a run. Not part of `npm run bench`:
 *
 *   node dist/bench/peers/side-by-side.js [--targets=pollgate-memory,socketio,faye] [--seconds=4] [--clients=1000] [--rate=N] [--keep]
 *
 * --rate=N runs the delivery window at N publishes a second for every target (the comparison's
 * closed loop otherwise), so each does the same work per second.
 *
 * --keep leaves the profiles (and the windows, in the JSON) for a closer look: every area of the
 * window is in the JSON's `areas`.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRedisServer, type RedisServer } from '../../spec/support/redis.js';
import { readerToken, round, Violations } from '../client.js';
import { summarizeProfile, type ProfileSummary } from '../profile.js';
import { delivery, publishOnly, type MonotonicWindow } from './scenarios.js';
import { startTarget, TARGET_LABELS, targetList, type TargetName } from './targets.js';
import { option, runAsScript } from '../args.js';

const args = process.argv.slice(2);
const TARGETS = targetList(option('targets', 'pollgate-memory,socketio,faye'));
const SECONDS = Number(option('seconds', '4'));
const CLIENTS = Number(option('clients', '1000'));
const RATE = Number(option('rate', '0'));
const KEEP = args.includes('--keep');
const OUT = fileURLToPath(new URL('../../../bench/results/side-by-side.json', import.meta.url));

/** Libraries that are not the HTTP framework: the server's own choices for a job. */
const LIBRARIES = new Set(['prom-client', 'pino', 'rate-limiter-flexible', 'jose', 'ioredis', 'nanoid', 'zod', '@socket.io/redis-adapter', '@ioredis/commands', 'redis-parser', 'denque', 'cluster-key-slot']);

export const LAYERS = ['kernel: socket writes', 'Node: http, net, streams, timers', 'framework', 'own code', 'libraries', 'GC', 'native, not attributed'] as const;
type Layer = (typeof LAYERS)[number];

/** The layer of an area of bench/profile.ts's summary. */
export function layerOf(area: string): Layer {
  if (area === 'GC') return 'GC';
  if (/^native: (writev|write|writeUtf8String|writeBuffer|writeLatin1String)$/.test(area)) return 'kernel: socket writes';
  if (area.startsWith('native:') || area.startsWith('(program')) return 'native, not attributed';
  if (area.startsWith('node:')) return 'Node: http, net, streams, timers';
  // The server's own files: pollgate's lib/, a peer's script in bench/peers/ (bench/profile.ts's areaOf).
  if (area.startsWith('lib/') || area.startsWith('bench/')) return 'own code';
  return LIBRARIES.has(area) ? 'libraries' : 'framework';
}

interface Split {
  ops: number;
  /** µs per operation by area of bench/profile.ts (every one). */
  areas: Record<string, number>;
  cpuUsPerOp: number;
  /** µs per operation by layer, from the profile's samples in the window. */
  layers: Record<Layer, number>;
  /** The biggest functions by self time, µs per operation. */
  top: { fn: string; where: string; us: number }[];
}

function split(summary: ProfileSummary, ops: number, cpuUsPerOp: number): Split {
  const layers = Object.fromEntries(LAYERS.map((l) => [l, 0])) as Record<Layer, number>;
  for (const [area, us] of Object.entries(summary.areaUs)) layers[layerOf(area)] += us / ops;
  for (const l of LAYERS) layers[l] = round(layers[l], 1);
  const busyUs = summary.busyMs * 1000;
  const areas = Object.fromEntries(Object.entries(summary.areaUs).sort((a, b) => b[1] - a[1]).map(([a, us]) => [a, round(us / ops, 1)]));
  return {
    ops, areas, cpuUsPerOp, layers,
    top: summary.functions.slice(0, 12).map((f) => ({ fn: f.fn, where: f.where, us: round(((f.pct / 100) * busyUs) / ops, 1) })),
  };
}

async function main(): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), 'pollgate-side-by-side-'));
  const needsRedis = TARGETS.some((t) => t.endsWith('redis'));
  const redis: RedisServer = needsRedis ? await startRedisServer() : (undefined as unknown as RedisServer);
  const violations = new Violations();
  const token = await readerToken();
  const results: Partial<Record<TargetName, { delivery: Split; publish: Split }>> = {};
  try {
    for (const name of TARGETS) {
      process.stderr.write(`[side-by-side] ${name}\n`);
      const profDir = join(tmp, 'prof');
      const target = await startTarget(name, { redis, token, logDir: tmp, cpuProfDir: profDir });
      const ctx = { target, violations, tag: `${name.replace(/[^a-z]/g, '')}${Date.now().toString(36)}` };
      let d;
      let p;
      try {
        d = await delivery(ctx, CLIENTS, 2.5, SECONDS, RATE);
        p = await publishOnly(ctx, 1000, 1, SECONDS);
      } finally {
        await target.gw.stop();
      }
      const dir = join(profDir, name);
      const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
      if (!file) throw new Error(`${name} wrote no CPU profile`);
      const at = (w: MonotonicWindow) => summarizeProfile(join(dir, file), 40, w);
      results[name] = { delivery: split(at(d.window), d.delivered, d.cpuUsPerDelivery), publish: split(at(p.window), p.publishes, p.cpuUsPerPublish) };
    }
  } finally {
    await redis?.stop();
    if (KEEP) process.stderr.write(`[side-by-side] profiles kept in ${tmp}\n`);
    else rmSync(tmp, { recursive: true, force: true });
  }
  writeFileSync(OUT, JSON.stringify({ date: new Date().toISOString(), seconds: SECONDS, clients: CLIENTS, rate: RATE, results }, null, 2) + '\n');
  for (const op of ['delivery', 'publish'] as const) {
    const pace = op === 'delivery' && RATE > 0 ? `, ${RATE} publishes/s for every target` : ', closed loop';
    console.log(`\nµs per ${op === 'delivery' ? 'delivered message' : 'publish'} under --cpu-prof${pace}, by layer`);
    const names = TARGETS.filter((t) => results[t]);
    console.log(['layer'.padEnd(36), ...names.map((n) => TARGET_LABELS[n].padStart(18))].join(''));
    console.log(['CPU (process.cpuUsage)'.padEnd(36), ...names.map((n) => String(results[n]![op].cpuUsPerOp).padStart(18))].join(''));
    for (const l of LAYERS) console.log([`  ${l}`.padEnd(36), ...names.map((n) => String(results[n]![op].layers[l]).padStart(18))].join(''));
    for (const n of names) {
      console.log(`  ${TARGET_LABELS[n]}, top functions (self µs per ${op}): ${results[n]![op].top.map((f) => `${f.fn} ${f.us}`).join(', ')}`);
    }
  }
  violations.exitProcess();
}

runAsScript(import.meta.url, 'side-by-side', main);
