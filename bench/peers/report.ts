/**
 * The peer comparison as a side-by-side table: each figure for each target, and pollgate ÷ its
 * best peer (the memory store against the better of Socket.IO polling and Faye; the Redis store
 * against Socket.IO + redis-adapter). Every ratio figure is lower-is-better: below 1 pollgate wins.
 */
import { ratioChart } from '../chart.js';
import type { PeersReport, TargetFigures } from './run.js';
import { TARGET_LABELS, TARGET_NAMES, type TargetName } from './targets.js';

interface Figure {
  key: string;
  label: string;
  value(t: TargetFigures): number | undefined;
  /** Lower is better and the ratio is worth printing (false: context rows). */
  ratio: boolean;
}

function figures(r: PeersReport): Figure[] {
  const s = r.sizes;
  const runs = `median of ${s.rounds}`;
  return [
    { key: 'cpuUsPerDelivery', label: `CPU µs per delivered message (${s.clients} subscribers, ${runs})`, value: (t) => t.delivery?.cpuUsPerDelivery, ratio: true },
    { key: 'redisCpuUsPerDelivery', label: '  Redis CPU µs per delivery', value: (t) => t.delivery?.redisCpuUsPerDelivery, ratio: true },
    { key: 'deliveriesPerSec', label: '  deliveries/s (64 publishes in flight)', value: (t) => t.delivery?.deliveriesPerSec, ratio: false },
    { key: 'deliveryServerCpuPct', label: '  server CPU %', value: (t) => t.delivery?.serverCpuPct, ratio: false },
    { key: 'perResponse', label: '  messages per response', value: (t) => t.delivery?.perResponse, ratio: false },
    { key: 'deliveryP99Ms', label: '  publish-to-delivery p50 / p99 ms', value: (t) => t.delivery?.p99Ms, ratio: false },
    { key: 'cpuUsPerPublish', label: `CPU µs per publish (${s.streams} streams, no subscribers, ${runs})`, value: (t) => t.publish?.cpuUsPerPublish, ratio: true },
    { key: 'redisCpuUsPerPublish', label: '  Redis CPU µs per publish', value: (t) => t.publish?.redisCpuUsPerPublish, ratio: true },
    { key: 'publishesPerSec', label: '  publishes/s', value: (t) => t.publish?.publishesPerSec, ratio: false },
    { key: 'broadcastP100Ms', label: `broadcast to ${s.broadcast} parked: ms until 100% (t100)`, value: (t) => t.broadcast?.p100Ms, ratio: true },
    { key: 'broadcastP50Ms', label: '  ms until 50% (t50)', value: (t) => t.broadcast?.p50Ms, ratio: true },
    { key: 'broadcastP99Ms', label: '  ms until 99% (t99)', value: (t) => t.broadcast?.p99Ms, ratio: true },
    { key: 'broadcastLoopP99Ms', label: '  event-loop delay p99 ms during it', value: (t) => t.broadcast?.loopDelayP99Ms, ratio: true },
    { key: 'broadcastCpuMs', label: '  server CPU ms for it', value: (t) => t.broadcast?.serverCpuMs, ratio: true },
    { key: 'broadcastLoadGeneratorCpuMs', label: '  load generator CPU ms for it', value: (t) => t.broadcast?.loadGeneratorCpuMs, ratio: false },
    { key: 'kbPerParked', label: `KB RSS per parked poll (${s.parked})`, value: (t) => t.parked?.kbPerParked, ratio: true },
    { key: 'kbHeapPerParked', label: '  KB heap per parked poll', value: (t) => t.parked?.kbHeapPerParked, ratio: true },
  ];
}

const round2 = (v: number) => Math.round(v * 100) / 100;

/** pollgate memory ÷ min(Socket.IO, Faye) and pollgate Redis ÷ Socket.IO + redis-adapter, per ratio figure. */
export function peerRatios(r: PeersReport): Record<string, { memory?: number; redis?: number }> {
  const out: Record<string, { memory?: number; redis?: number }> = {};
  for (const f of figures(r).filter((x) => x.ratio)) {
    const v = (n: TargetName) => f.value(r.targets[n]);
    const peers = [v('socketio'), v('faye')].filter((x): x is number => x !== undefined && x > 0);
    const mem = v('pollgate-memory');
    const red = v('pollgate-redis');
    const sio = v('socketio-redis');
    out[f.key] = {
      ...(mem !== undefined && peers.length ? { memory: round2(mem / Math.min(...peers)) } : {}),
      ...(red !== undefined && sio ? { redis: round2(red / sio) } : {}),
    };
  }
  return out;
}

/**
 * Broadcasts that kept the load generator busy for most of their t100. The one load-generator
 * core then paced every arrival: t100 says how fast the clients parsed answers and sent their
 * next polls, as much as how fast the server answered. That was every target's case on
 * 2026-12-07 (docs/PERFORMANCE.md).
 */
export function loadGeneratorBound(targets: Partial<Record<TargetName, TargetFigures>>, share = 0.9): string[] {
  return TARGET_NAMES.flatMap((n) => {
    const b = targets[n]?.broadcast;
    if (!b || !(b.loadGeneratorCpuMs >= share * b.p100Ms)) return [];
    const pct = Math.round((100 * b.loadGeneratorCpuMs) / b.p100Ms);
    return [`${TARGET_LABELS[n]} broadcast: the load generator was busy for ${pct}% of t100, so that t100 is bounded by the clients' work, not only the server's`];
  });
}

export function printPeers(r: PeersReport): void {
  const ratios = peerRatios(r);
  console.log(`\n== peers: the same load generator against each (server on core 0), ${r.seconds} s`);
  const rows: string[][] = [['figure', ...TARGET_NAMES.map((n) => TARGET_LABELS[n]), 'memory ÷ best peer', 'Redis ÷ Socket.IO+Redis']];
  for (const f of figures(r)) {
    const cell = (n: TargetName) => {
      const v = f.value(r.targets[n]);
      if (f.key === 'deliveryP99Ms') return r.targets[n].delivery ? `${r.targets[n].delivery!.p50Ms} / ${v}` : '-';
      return v === undefined ? '-' : String(v);
    };
    const ratio = ratios[f.key];
    rows.push([f.label, ...TARGET_NAMES.map(cell), ratio?.memory !== undefined ? `${ratio.memory}x` : '', ratio?.redis !== undefined ? `${ratio.redis}x` : '']);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  console.log(rows.map((row) => row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ')).join('\n'));
  for (const [name, t] of Object.entries(r.targets)) {
    if (t.deliveryRuns.length > 1) console.log(`  ${name}: µs per delivery by round ${t.deliveryRuns.map((d) => d.cpuUsPerDelivery).join(' / ')}; per publish ${t.publishRuns.map((p) => p.cpuUsPerPublish).join(' / ')}`);
  }
  for (const n of r.notes) console.log(`note: ${n}`);
}

/** The ratio figures as a chart (bench/results/peers.svg). */
export function peersChart(r: PeersReport): string {
  const ratios = peerRatios(r);
  const rows = figures(r).filter((f) => f.ratio && ratios[f.key] && (ratios[f.key]!.memory !== undefined || ratios[f.key]!.redis !== undefined));
  return ratioChart(`pollgate ÷ best peer, lower is better (${r.sizes.clients} subscribers, 1 core)`, rows.map((f) => ({ label: f.label.trim().replace(/ \(.*\)$/, ''), ...ratios[f.key] })));
}
