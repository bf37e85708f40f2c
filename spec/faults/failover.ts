/**
 * Failover runs of the fault suite (issue 20): two gateway processes on a Redis Cluster or a
 * Sentinel group, senders that retry unknown outcomes with the same id, one poller per transport,
 * and one fault in the middle (a master or primary SIGKILLed, or a busy stream's slot migrated).
 * The checker then judges every acknowledged message; the run also measures how long the fault
 * kept the affected streams from taking sends and from waking parked clients.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { spawnGateway, TEST_API_KEY, type ChildGateway } from '../support/gateway.js';
import { check, formatReport, type History, type PollEvent, type Report } from './checker.js';
import { longPoll, Poller, type Transport } from './pollers.js';
import { Sender } from './senders.js';
import { sse, websocket } from './stream-transports.js';

export interface FailoverScenario {
  /** What the report calls the setup, e.g. "Redis Cluster, 3 masters + 3 replicas". */
  setup: string;
  /** Environment of the gateway processes that points them at Redis. */
  env: Record<string, string>;
  streams: string[];
  /** The streams the fault touches (the killed master's, the migrated one). */
  affected: string[];
  /** Injects the fault; resolves with log lines once the system is whole again (e.g. a replica back). */
  fault(): Promise<string[]>;
}

export interface FailoverResult {
  report: Report;
  text: string;
  /** The longest pause between two acknowledgements on the affected streams around the fault, ms. */
  pauseMs: number;
  /** Of the messages acknowledged on affected streams after the fault: the longest and median time from the 200 to each poller's receipt, ms. */
  wakeMaxMs: number;
  wakeP50Ms: number;
  /** Resets seen per stream (every poller counted). */
  resets: Map<string, number>;
}

export interface FailoverOptions {
  /** Traffic before the fault and after it, ms. */
  beforeMs?: number;
  afterMs?: number;
  senders?: number;
  reportFile?: string;
}

/** Runs the scenario once. Always stops every process it started (not the Redis the scenario owns). */
export async function runFailover(scenario: FailoverScenario, options: FailoverOptions = {}): Promise<FailoverResult> {
  const dir = mkdtempSync(join(tmpdir(), 'pollgate-failover-'));
  writeFileSync(join(dir, 'gateway.json'), JSON.stringify({
    retention: { default: { maxLength: 500_000 } },
    limits: { parkedPerIp: 1_000_000 },
    rateLimits: { pollsPerIpPerSecond: 0, apiKeySendPerSecond: 0 },
  }));
  const gateways: ChildGateway[] = [];
  const nodes = () => gateways.map((g) => g.url);
  const streams = scenario.streams;
  const transports: Transport[] = [longPoll, longPoll, sse, websocket];
  const pollers = transports.map((t, i) => new Poller({ name: `${t.name}-${i}`, transport: t, streams, apiKey: TEST_API_KEY, nodes }));
  const senders = Array.from({ length: options.senders ?? 3 }, (_, i) => new Sender({ name: `s${i}`, streams, apiKey: TEST_API_KEY, nodes, pauseMs: 20, timeoutMs: 3000 }));
  const marker = new Sender({ name: 'final', streams, apiKey: TEST_API_KEY, nodes, pauseMs: 0, timeoutMs: 3000 });
  const started = Date.now();
  try {
    const env = { ...scenario.env, POLLGATE_REDIS_PREFIX: 'failover:', POLLGATE_CONFIG: join(dir, 'gateway.json') };
    gateways.push(...(await Promise.all([spawnGateway(env), spawnGateway(env)])));
    for (const s of streams) await marker.sendUntilAcked(s, `init-${s.replace(/\W/g, '_')}`, -1);
    pollers.forEach((p) => p.start());
    senders.forEach((s) => s.start());
    await new Promise((r) => setTimeout(r, options.beforeMs ?? 3000));
    const faultAt = Date.now();
    const faultLog = await scenario.fault();
    const healedAt = Date.now();
    await new Promise((r) => setTimeout(r, options.afterMs ?? 5000));
    await Promise.all(senders.map((s) => s.stop()));
    for (const [i, s] of streams.entries()) await marker.sendUntilAcked(s, `final-${i}`, i);
    const deadline = Date.now() + 60_000;
    while (!pollers.every((p) => streams.every((s, i) => p.received(s).has(`final-${i}`))) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    await Promise.all(pollers.map((p) => p.stop()));

    const acks = [...senders, marker].flatMap((s) => s.acks);
    const history: History = {
      streams,
      acks,
      indeterminate: [...senders, marker].flatMap((s) => s.indeterminate),
      pollers: pollers.map((p) => p.history),
      // A failover is not a crash window: with ackDurability replicas nothing acknowledged may go.
      redisCrashes: [],
      crashWindowMs: 0,
    };
    const report = check(history);
    const affected = new Set(scenario.affected);
    const after = acks.filter((a) => affected.has(a.stream) && a.at > faultAt && a.sender !== 'final');
    // Sends in flight when the fault struck may still be acknowledged after it: the pause tells more.
    const times = acks.filter((a) => affected.has(a.stream) && a.sender !== 'final').map((a) => a.at).sort((a, b) => a - b);
    let pause = { ms: 0, from: faultAt };
    for (let i = 1; i < times.length; i++) {
      if (times[i]! < faultAt || times[i - 1]! > healedAt) continue;
      if (times[i]! - times[i - 1]! > pause.ms) pause = { ms: times[i]! - times[i - 1]!, from: times[i - 1]! };
    }
    const wakes: number[] = [];
    for (const p of pollers) {
      for (const stream of affected) {
        const got = new Map<string, number>();
        for (const e of (p.history.streams.get(stream) ?? []) as PollEvent[]) if (e.type === 'msg' && !got.has(e.id)) got.set(e.id, e.at);
        for (const a of after) if (a.stream === stream && got.has(a.id)) wakes.push(Math.max(0, got.get(a.id)! - a.at));
      }
    }
    wakes.sort((a, b) => a - b);
    const resets = new Map(report.streams.map((s) => [s.stream, s.resets]));
    const result = {
      report,
      pauseMs: pause.ms,
      wakeMaxMs: wakes.at(-1) ?? Number.NaN,
      wakeP50Ms: wakes[Math.floor(wakes.length / 2)] ?? Number.NaN,
      resets,
      text: '',
    };
    result.text = [
      `pollgate failover run: ${scenario.setup}; ${Math.round((Date.now() - started) / 1000)} s in all, ${streams.length} streams (${scenario.affected.length} affected), ${senders.length} senders, ${pollers.length} pollers (${transports.map((t) => t.name).join(', ')}), 2 gateways`,
      ...faultLog.map((l) => `fault: ${l}`),
      `fault to healed: ${healedAt - faultAt} ms; longest pause in acknowledgements on the affected streams: ${pause.ms} ms (from ${pause.from - faultAt} ms after the fault)`,
      `acknowledged after the fault on affected streams: ${after.length}; 200 to receipt at each poller: p50 ${result.wakeP50Ms} ms, max ${result.wakeMaxMs} ms`,
      `poller reconnects: ${pollers.map((p) => `${p.history.name} ${p.reconnects}`).join(', ')}`,
      formatReport(report),
      `verdict: ${report.ok ? 'OK' : 'FAILED'}`,
    ].join('\n');
    if (options.reportFile) {
      mkdirSync(dirname(options.reportFile), { recursive: true });
      writeFileSync(options.reportFile, `${result.text}\n`);
    }
    return result;
  } finally {
    await Promise.allSettled([...senders, marker].map((s) => s.stop()));
    await Promise.allSettled(pollers.map((p) => p.stop()));
    await Promise.all(gateways.map((g) => g.kill()));
    rmSync(dir, { recursive: true, force: true });
  }
}
