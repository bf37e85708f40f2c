/** The machine a run came from, and the printed table of a run against the issue's targets. */
import { execSync } from 'node:child_process';
import { cpus } from 'node:os';
import type { FanoutFloorResult, FloorResult } from './scenarios/floor.js';
import type { ConnectedResult } from './scenarios/connected.js';
import type { FanoutResult } from './scenarios/fanout.js';
import type { ParkedResult } from './scenarios/parked.js';
import type { ResumeResult } from './scenarios/resume.js';
import type { SendOnlyResult } from './scenarios/send-only.js';
import type { TargetedResult } from './scenarios/targeted.js';
import { hasTaskset } from './gateway.js';

export interface StoreResults {
  parked: ParkedResult[];
  fanout: FanoutResult[];
  resume: ResumeResult;
  sendOnly: SendOnlyResult;
  sendOnlyRuns: SendOnlyResult[];
  max: TargetedResult;
  maxRuns: TargetedResult[];
  levels: TargetedResult[];
  /** The closed-loop maximum with fewer clients (a higher rate per client): messages per answer rise. */
  batching?: TargetedResult[];
  /** Idle WebSocket and SSE connections (the parked measure for open transports). */
  connected: ConnectedResult[];
  /** The targeted maximum over WebSocket and SSE. */
  streaming: Record<'ws' | 'sse', { max: TargetedResult; runs: TargetedResult[] }>;
  notes: string[];
}

export function machine() {
  let commit = '';
  try {
    commit = execSync('git rev-parse --short HEAD', { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    // not a checkout
  }
  return { cpuModel: cpus()[0]?.model ?? '?', nproc: cpus().length, node: process.version, taskset: hasTaskset, commit };
}

/** Targets from issue 7 (memory store / Redis store). */
const TARGETS = {
  cpuUsPerDelivery: { memory: 100, redis: 130 },
  cpuUsPerSend: { memory: 50, redis: 70 },
  kbPerParked: 12,
  fanout99Ms: 300,
  loopLagP99Ms: 50,
};

const mark = (ok: boolean) => (ok ? 'ok  ' : 'MISS');

/** "12 µs more" or "7 µs less": a noisy run can measure info-level logging as cheaper than warn. */
function describeDifference(us: number): string {
  return `${Math.abs(Math.round(us))} µs ${us >= 0 ? 'more' : 'less'}`;
}

/** A closed-loop maximum that kept the gateway below this share of its core was limited by the load generator. */
const SATURATED_CPU_PCT = 85;

export function printReport(report: { machine: ReturnType<typeof machine>; floors: FloorResult[]; longPollFloors?: TargetedResult[]; fanoutFloors?: FanoutFloorResult[]; results: Partial<Record<'memory' | 'redis', StoreResults>>; infoLog?: { warn: TargetedResult; info: TargetedResult }; seconds: number }): void {
  const m = report.machine;
  console.log(`\npollgate bench @ ${m.commit}: ${m.cpuModel}, ${m.nproc} cores, Node ${m.node}, taskset ${m.taskset ? 'yes' : 'no'}, ${report.seconds} s`);
  const httpFloor = medianOf(report.floors.filter((f) => f.server === 'http').map((f) => f.cpuUsPerRequest));
  const koaFloor = medianOf(report.floors.filter((f) => f.server === 'koa').map((f) => f.cpuUsPerRequest));
  console.log(`floor on this machine during the run: node:http ${report.floors.filter((f) => f.server === 'http').map((f) => f.cpuUsPerRequest).join(' / ')} µs/request (issue: 39), Koa ${report.floors.filter((f) => f.server === 'koa').map((f) => f.cpuUsPerRequest).join(' / ')} (issue: 44)`);
  console.log(`  so one delivery (2 requests) floors at about ${Math.round(2 * koaFloor)} µs here; a target scaled to this machine = target x ${round2(httpFloor / 39)}`);
  const longPoll = report.longPollFloors ?? [];
  const longPollFloor = medianOf(longPoll.map((f) => f.cpuUsPerDelivery));
  if (longPoll.length) {
    console.log(`  long-poll floor: a bare node:http long-poll server under the same targeted maximum: ${longPoll.map((f) => f.cpuUsPerDelivery).join(' / ')} µs per delivered message (${longPoll.map((f) => `${f.deliveriesPerSec}/s`).join(' / ')}); the issue assumed 80-90 on its machine`);
  }
  for (const f of report.fanoutFloors ?? []) {
    console.log(`  broadcast floor: bare node:http answering ${f.clients} held requests in one loop: ${f.p50Ms} / ${f.p99Ms} / ${f.p100Ms} ms to 50/99/100%, ${f.serverCpuMs} ms server CPU; ${f.kbRssPerHeld} KB RSS per held request`);
  }
  for (const [store, r] of Object.entries(report.results) as ['memory' | 'redis', StoreResults][]) {
    console.log(`\n== ${store} store`);
    const rows: string[][] = [['metric', 'value', 'target', '']];
    const big = r.parked[r.parked.length - 1]!;
    const polled = r.fanout.filter((f) => f.transport === 'poll');
    const fan = polled[polled.length - 1]!;
    rows.push(['CPU µs per delivered message (max load, median of runs)', `${r.max.cpuUsPerDelivery}`, `≤ ${TARGETS.cpuUsPerDelivery[store]}`, mark(r.max.cpuUsPerDelivery <= TARGETS.cpuUsPerDelivery[store])]);
    if (longPoll.length) {
      // The issue's targets over its assumed floor of 80-90 µs: 100 -> 1.1-1.25, 130 -> 1.4-1.6.
      const scaled = store === 'memory' ? '1.1-1.25' : '1.4-1.6';
      rows.push(['  the same, in long-poll floors measured in this run', `${round2(r.max.cpuUsPerDelivery / longPollFloor)}x`, `issue: ${scaled}x`, '']);
    }
    rows.push(['  deliveries/s at max load; messages per answer; gateway CPU %', `${r.max.deliveriesPerSec}; ${r.max.messagesPerResponse}; ${r.max.serverCpuPct}%`, '', '']);
    for (const b of r.batching ?? []) {
      rows.push([`  batching: the maximum with ${b.clients} clients: µs per message; messages per answer; /s`, `${b.cpuUsPerDelivery}; ${b.messagesPerResponse}; ${b.deliveriesPerSec}`, '', '']);
    }
    rows.push(['CPU µs per /send, no subscribers (median)', `${r.sendOnly.cpuUsPerSend}`, `≤ ${TARGETS.cpuUsPerSend[store]}`, mark(r.sendOnly.cpuUsPerSend <= TARGETS.cpuUsPerSend[store])]);
    for (const p of r.parked) {
      rows.push([`KB RSS per parked poll (${p.clients})`, `${p.kbPerParked} (2nd round ${p.kbPerParkedRound2})`, p === big ? `≤ ${TARGETS.kbPerParked}` : '', p === big ? mark(p.kbPerParked <= TARGETS.kbPerParked) : '']);
      rows.push([`  KB heap used / committed per parked poll (${p.clients})`, `${p.kbHeapPerParked} / ${p.kbHeapTotalPerParked ?? '-'}`, '', '']);
      rows.push([`  RSS MB: base / after leave / after 2nd round timed out (${p.clients})`, `${p.baselineRssMB} / ${p.rssAfterLeaveMB} / ${p.rssAfterTimeoutMB}`, '', '']);
      rows.push([`  heap MB after leave / timeout; open fds base / leave / timeout`, `${p.heapAfterLeaveMB} / ${p.heapAfterTimeoutMB}; ${p.fdsBase} / ${p.fdsAfterLeave} / ${p.fdsAfterTimeout}`, '', '']);
    }
    for (const f of polled) {
      rows.push([`fan-out ${f.clients}: ms to 50/99/100%`, `${f.p50Ms} / ${f.p99Ms} / ${f.p100Ms}`, f === fan ? `99% ≤ ${TARGETS.fanout99Ms}` : '', f === fan ? mark(f.p99Ms <= TARGETS.fanout99Ms) : '']);
      rows.push([`  loop delay p99/max ms; store calls (${f.clients})`, `${f.loopDelayP99Ms} / ${f.loopDelayMaxMs}; ${f.storeCalls ?? '-'}`, f === fan ? `p99 < ${TARGETS.loopLagP99Ms}` : '', f === fan ? mark(f.loopDelayP99Ms < TARGETS.loopLagP99Ms) : '']);
    }
    rows.push([`resume: clients with exactly the ${r.resume.missedPerClient} missed`, `${r.resume.resumedExactly}/${r.resume.clients}`, 'all', mark(r.resume.resumedExactly === r.resume.clients)]);
    for (const [t, { max }] of Object.entries(r.streaming)) {
      rows.push([`${t}: CPU µs per delivered message (max load, median)`, `${max.cpuUsPerDelivery}`, '', '']);
      rows.push([`  ${t}: deliveries/s; messages per frame (SSE: per socket read); p50/p99 ms`, `${max.deliveriesPerSec}; ${max.messagesPerResponse}; ${max.p50Ms} / ${max.p99Ms}`, '', '']);
    }
    for (const c of r.connected) {
      rows.push([`${c.transport}: KB RSS / heap per open connection (${c.clients})`, `${c.kbPerConnection} / ${c.kbHeapPerConnection}`, '', '']);
      rows.push([`  ${c.transport}: RSS MB base / after leave; heap MB after leave; fds base / leave`, `${c.baselineRssMB} / ${c.rssAfterLeaveMB}; ${c.heapAfterLeaveMB}; ${c.fdsBase} / ${c.fdsAfterLeave}`, '', '']);
    }
    for (const f of r.fanout.filter((x) => x.transport !== 'poll')) {
      rows.push([`${f.transport}: fan-out ${f.clients}, ms to 50/99/100%; loop delay p99`, `${f.p50Ms} / ${f.p99Ms} / ${f.p100Ms}; ${f.loopDelayP99Ms}`, '', '']);
    }
    console.log(table(rows));
    const lv: string[][] = [['offered/s', 'delivered/s', 'µs CPU/msg', 'CPU %', 'msgs/answer', 'p50 ms', 'p90 ms', 'p99 ms', ...(store === 'redis' ? ['store calls/msg', 'redis µs/msg'] : [])]];
    for (const l of r.levels) {
      lv.push([l.rate ? String(l.rate) : 'max', String(l.deliveriesPerSec), String(l.cpuUsPerDelivery), String(l.serverCpuPct), String(l.messagesPerResponse), String(l.p50Ms), String(l.p90Ms), String(l.p99Ms),
        ...(store === 'redis' ? [String(l.storeCallsPerDelivery), String(l.redisCpuUsPerDelivery)] : [])]);
    }
    console.log(table(lv));
    // Below SATURATED_CPU_PCT the closed loop did not saturate the gateway (see PERFORMANCE.md, "Left").
    const maxima: [string, TargetedResult][] = [['long-poll', r.max], ...Object.entries(r.streaming).map(([t, x]): [string, TargetedResult] => [t, x.max])];
    for (const [what, t] of maxima) {
      if (t.serverCpuPct < SATURATED_CPU_PCT) console.log(`note: the ${what} maximum kept the gateway at ${t.serverCpuPct}% of its core (under ${SATURATED_CPU_PCT}%): likely the load generator's limit, and CPU per delivery at part load reads higher`);
    }
    for (const n of r.notes) console.log(`note: ${n}`);
  }
  if (report.infoLog) {
    const { warn, info } = report.infoLog;
    console.log(`\nrequest log at info: ${info.cpuUsPerDelivery} µs/delivery vs ${warn.cpuUsPerDelivery} at warn (${describeDifference(info.cpuUsPerDelivery - warn.cpuUsPerDelivery)})`);
  }
}

function medianOf(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

const round2 = (v: number) => Math.round(v * 100) / 100;

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c]!)).join('  ')).join('\n');
}
