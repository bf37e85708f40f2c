/**
 * What the young generation does with each target's garbage, on the peer comparison's delivery
 * scenario: every target runs alone on core 0 with V8's `--trace-gc-nvp`, and the scavenges of
 * the measured part are summed up. The CPU profile (side-by-side.ts) says how much time the GC
 * takes; this says why: how much each scavenge finds alive, how much of it it promotes to the
 * old generation (what survived two scavenges), and how often scavenges come. Not part of
 * `npm run bench`:
 *
 *   node dist/bench/peers/gc-trace.js [--targets=pollgate-memory,socketio,faye] [--seconds=4] [--clients=1000] [--rate=N] [--node-flags=a,b]
 *
 * --rate=N paces the publisher at N a second for every target, so a parked poll waits as long on
 * each of them (the closed loop lets a faster target's polls live shorter). --node-flags go to
 * every target after the start script's (--max-semi-space-size=64, say).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRedisServer, type RedisServer } from '../../spec/support/redis.js';
import { readerToken, round, Violations } from '../client.js';
import { delivery } from './scenarios.js';
import { startTarget, TARGET_LABELS, targetList, type TargetName } from './targets.js';
import { option, runAsScript } from '../args.js';

/** One `--trace-gc-nvp` line: when (ms since the isolate started) and its name=value pairs. */
interface GcEvent {
  atMs: number;
  kind: string;
  fields: Record<string, number>;
}

export interface ScavengeSummary {
  scavenges: number;
  /** Mean ms between two scavenges (V8's mutator time before each). */
  intervalMs: number;
  /** Means per scavenge. */
  allocatedMB: number;
  survivedMB: number;
  promotedMB: number;
  pauseMs: number;
  /** Old-generation collections in the same span, and their pause in all. */
  markCompacts: number;
  markCompactPauseMs: number;
  /** Bytes promoted a second over the span. */
  promotedMBPerSec: number;
}

/** Parses `--trace-gc-nvp` output; other lines are skipped. */
export function gcEvents(text: string): GcEvent[] {
  const events: GcEvent[] = [];
  for (const line of text.split('\n')) {
    const m = /\s(\d+) ms: (pause=.*)$/.exec(line);
    if (!m) continue;
    const fields: Record<string, number> = {};
    let kind = '';
    for (const pair of m[2]!.trim().split(/\s+/)) {
      const eq = pair.indexOf('=');
      if (eq < 0) continue;
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      if (name === 'gc') kind = value;
      else if (/^-?[\d.]+%?$/.test(value)) fields[name] = Number.parseFloat(value);
    }
    events.push({ atMs: Number(m[1]), kind, fields });
  }
  return events;
}

/**
 * The scavenges (gc=s) and mark-compacts (gc=mc) of the last `spanMs` of `events`: the measured
 * window, when the caller ran it last and for that long.
 */
export function scavengeSummary(events: readonly GcEvent[], spanMs: number): ScavengeSummary {
  const end = events.at(-1)?.atMs ?? 0;
  const inSpan = events.filter((e) => e.atMs >= end - spanMs);
  const scavenges = inSpan.filter((e) => e.kind === 's');
  const compacts = inSpan.filter((e) => e.kind === 'mc');
  const mean = (name: string) => (scavenges.length ? scavenges.reduce((sum, e) => sum + (e.fields[name] ?? 0), 0) / scavenges.length : 0);
  const MB = 1024 * 1024;
  const first = scavenges[0]?.atMs ?? 0;
  const last = scavenges.at(-1)?.atMs ?? 0;
  const promotedAfterFirst = scavenges.slice(1).reduce((sum, e) => sum + (e.fields.promoted ?? 0), 0);
  return {
    scavenges: scavenges.length,
    intervalMs: round(mean('mutator'), 1),
    allocatedMB: round(mean('allocated') / MB, 2),
    survivedMB: round(mean('new_space_survived') / MB, 2),
    promotedMB: round(mean('promoted') / MB, 2),
    pauseMs: round(mean('pause'), 1),
    markCompacts: compacts.length,
    markCompactPauseMs: round(compacts.reduce((sum, e) => sum + (e.fields.pause ?? 0), 0), 1),
    promotedMBPerSec: last > first ? round(promotedAfterFirst / MB / ((last - first) / 1000), 1) : 0,
  };
}

async function main(): Promise<void> {
  const targets = targetList(option('targets', 'pollgate-memory,socketio,faye'));
  const seconds = Number(option('seconds', '4'));
  const clients = Number(option('clients', '1000'));
  const rate = Number(option('rate', '0'));
  const nodeFlags = option('node-flags', '').split(',').filter(Boolean);
  const tmp = mkdtempSync(join(tmpdir(), 'pollgate-gc-trace-'));
  const redis: RedisServer | undefined = targets.some((t) => t.endsWith('redis')) ? await startRedisServer() : undefined;
  const violations = new Violations();
  const token = await readerToken();
  const rows: [TargetName, ScavengeSummary, number, number][] = [];
  try {
    for (const name of targets) {
      process.stderr.write(`[gc-trace] ${name}\n`);
      const target = await startTarget(name, { redis: redis as RedisServer, token, logDir: tmp, nodeFlags: ['--trace-gc-nvp', ...nodeFlags] });
      let d;
      try {
        d = await delivery({ target, violations, tag: `${name.replace(/[^a-z]/g, '')}${Date.now().toString(36)}` }, clients, 2.5, seconds, rate);
      } finally {
        await target.gw.stop();
      }
      // The window ends with its drain, which comes last: its last `seconds` are the measured part.
      const summary = scavengeSummary(gcEvents(readFileSync(join(tmp, `peer-${name}.log`), 'utf8')), seconds * 1000);
      rows.push([name, summary, d.deliveriesPerSec, d.cpuUsPerDelivery]);
    }
  } finally {
    await redis?.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
  const pace = rate > 0 ? `${rate} publishes/s for every target` : 'closed loop';
  const flags = nodeFlags.length ? `, with ${nodeFlags.join(' ')}` : '';
  console.log(`\nscavenges in the last ${seconds} s of the delivery scenario (${clients} subscribers, ${pace}${flags}), means per scavenge`);
  const columns = ['deliveries/s', 'CPU µs/delivery', 'scavenges', 'every ms', 'allocated MB', 'survived MB', 'promoted MB', 'pause ms', 'promoted MB/s', 'allocated KB/delivery', 'promoted KB/delivery', 'mark-compacts', 'their pause ms'];
  console.log(['target'.padEnd(28), ...columns.map((c) => c.padStart(Math.max(16, c.length + 2)))].join(''));
  for (const [name, s, perSec, cpu] of rows) {
    const perDelivery = perSec > 0 ? round((s.promotedMBPerSec * 1024) / perSec, 1) : 0;
    // What a scavenge found allocated, over the deliveries between two scavenges: the figure that
    // decides how many scavenges a parked poll lives through (docs/PERFORMANCE.md, "A poll's two scavenges").
    const allocatedPerDelivery = perSec > 0 && s.intervalMs > 0 ? round((s.allocatedMB * 1024) / ((perSec * s.intervalMs) / 1000), 1) : 0;
    const cells = [perSec, cpu, s.scavenges, s.intervalMs, s.allocatedMB, s.survivedMB, s.promotedMB, s.pauseMs, s.promotedMBPerSec, allocatedPerDelivery, perDelivery, s.markCompacts, s.markCompactPauseMs];
    console.log([TARGET_LABELS[name].padEnd(28), ...cells.map((c, i) => String(c).padStart(Math.max(16, columns[i]!.length + 2)))].join(''));
  }
  violations.exitProcess();
}

runAsScript(import.meta.url, 'gc-trace', main);
