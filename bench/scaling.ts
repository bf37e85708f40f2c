/**
 * `npm run bench -- --scaling` (docs/SCALING.md): what a send costs Redis as a cluster grows. For
 * 1, 3 and 6 masters (no replicas: only masters are summed), once with sharded pub/sub (SPUBLISH,
 * the default) and once with classic PUBLISH (redis.shardedPubSub false), it runs the Redis store
 * itself, no HTTP: one subscriber store follows every stream (as a gateway with parked clients
 * does) and two appender stores send to random streams. INFO of every master before and after a
 * measured window gives the Redis CPU per send, summed over the masters; so does an idle window of
 * the same length, which is taken off (cron, cluster bus pings and these INFO calls cost a master
 * the same whether it serves sends or not).
 *
 * Two kinds of run per size and build. At a fixed rate per master (the same load on each master
 * whatever their number, so what a master spends per send is compared like for like) for the CPU
 * per send; alternated twice, the lower kept (the machine may be shared). And closed-loop (32 sends
 * in flight) for the most sends per second this machine drove, per master. Every send must wake
 * the subscriber exactly once.
 *
 *   --scaling-masters=1,3,6   cluster sizes
 *   --scaling-rate=1500       sends per second per master in the fixed-rate runs
 *   --scaling-seconds=3       measured window per run
 *   --scaling-streams=600     streams (spread over every master)
 *   --scaling-subscribers=1   subscriber stores (gateways with waiters on every stream): each send wakes each
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../lib/log.js';
import { RedisStore } from '../lib/store/redis-store.js';
import { SERVER_SENDER, messageTail, type WakeHint } from '../lib/store/store.js';
import { nodeClient, shards, startRedisCluster, type RedisCluster } from '../spec/support/redis-cluster.js';
import { option } from './args.js';

const MASTERS = option('scaling-masters', '1,3,6').split(',').map(Number);
const SECONDS = Number(option('scaling-seconds', '3'));
const STREAMS = Number(option('scaling-streams', '600'));
const RATE = Number(option('scaling-rate', '1500'));
const SUBSCRIBERS = Number(option('scaling-subscribers', '1'));
const IN_FLIGHT = 32;
const OUT = option('out', fileURLToPath(new URL('../../bench/results', import.meta.url)));

const log = createLogger('silent');
const RULE = { maxLength: 100, ttlSeconds: 600, metaTtlSeconds: 3600 };
const DATA = JSON.stringify({ text: 'x'.repeat(80) });

interface Run {
  masters: number;
  pubsub: 'sharded' | 'classic';
  /** Sends per second asked for (fixed rate), or 'max' (closed loop). */
  load: number | 'max';
  sends: number;
  seconds: number;
  sendsPerSecond: number;
  sendsPerSecondPerMaster: number;
  /** Redis CPU (user + sys) per send, µs, summed over every master, the idle window's CPU taken off. */
  redisCpuUsPerSend: number;
  /** The same without taking the idle CPU off. */
  rawCpuUsPerSend: number;
  /** Each master's CPU over the window, % of one core. */
  masterCpuPercent: number[];
  /** Wake-ups each subscriber got per send (1 when nothing is lost or doubled). */
  wakesPerSend: number;
  /** PUBLISH / SPUBLISH calls per send, summed over the masters (INFO commandstats). */
  publishPerSend: number;
  spublishPerSend: number;
}

async function cpuAndCalls(ports: number[]): Promise<{ cpu: number[]; publish: number; spublish: number }> {
  const cpu: number[] = [];
  let publish = 0;
  let spublish = 0;
  for (const port of ports) {
    const admin = nodeClient(port);
    try {
      const info = await admin.info('all');
      const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
      cpu.push(field('used_cpu_user') + field('used_cpu_sys'));
      publish += Number(/^cmdstat_publish:calls=(\d+)/m.exec(info)?.[1] ?? 0);
      spublish += Number(/^cmdstat_spublish:calls=(\d+)/m.exec(info)?.[1] ?? 0);
    } finally {
      admin.disconnect();
    }
  }
  return { cpu, publish, spublish };
}

let runCount = 0;

/** Every master's CPU over an idle window (nothing sent), seconds per second. */
async function idleCpu(cluster: RedisCluster): Promise<number[]> {
  const ports = (await shards(cluster.nodes[0]!.port)).map((m) => m.port);
  const before = await cpuAndCalls(ports);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const after = await cpuAndCalls(ports);
  const seconds = (performance.now() - t0) / 1000;
  return after.cpu.map((c, i) => (c - before.cpu[i]!) / seconds);
}

async function measure(cluster: RedisCluster, masters: number, pubsub: Run['pubsub'], load: Run['load'], idle: number[]): Promise<Run> {
  // Fresh keys per run: a repeated id would be a duplicate, stored and published by no one.
  const keyPrefix = `scale:${runCount++}:`;
  const make = (tail: boolean) => new RedisStore({
    url: cluster.url, keyPrefix, cluster: true, shardedPubSub: pubsub === 'sharded', commandTimeoutMs: 5000, retention: () => RULE, log,
    tailCache: tail ? { enabled: true, lingerSeconds: 60, maxStreams: 100_000, maxMessages: 64, maxBytes: 65536, totalBytes: 64 << 20 } : undefined,
  });
  const subscribers = Array.from({ length: SUBSCRIBERS }, () => make(true));
  const appenders = [make(false), make(false)];
  await Promise.all([...subscribers, ...appenders].map((s) => s.connect()));
  let wakes = 0;
  for (const subscriber of subscribers) subscriber.setListener({ wake: (_stream: string, _hint: WakeHint) => void wakes++, resync: () => undefined });
  const streams = Array.from({ length: STREAMS }, (_, i) => `s:${i}`);
  try {
    await Promise.all(subscribers.flatMap((subscriber) => streams.map((s) => subscriber.subscribe(s))));
    let sends = 0;
    let issued = 0;
    let running = true;
    const sendOne = async () => {
      const n = issued++;
      const id = `m-${n}`;
      await appenders[n % appenders.length]!.append(streams[Math.floor(Math.random() * streams.length)]!, [{ id, sender: SERVER_SENDER, tail: messageTail(id, Date.now(), DATA) }]);
      sends++;
    };
    let loops: Promise<unknown>;
    if (load === 'max') {
      loops = Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
        while (running) await sendOne();
      }));
    } else {
      // Open loop: the sends due every 5 ms, at most 512 in flight (a run that cannot keep up says so in its sends/s).
      loops = (async () => {
        const pending = new Set<Promise<void>>();
        const t0 = performance.now();
        while (running) {
          const due = Math.floor(((performance.now() - t0) / 1000) * load) - issued;
          for (let i = 0; i < due && pending.size < 512; i++) {
            const p = sendOne().finally(() => pending.delete(p));
            pending.add(p);
          }
          await new Promise((r) => setTimeout(r, 5));
        }
        await Promise.all(pending);
      })();
    }
    // Warm-up: scripts loaded, connections made, pipelines full.
    await new Promise((r) => setTimeout(r, 1000));
    const ports = (await shards(cluster.nodes[0]!.port)).map((m) => m.port);
    // Sends go on while the masters are asked one by one: count from the middle of each reading.
    const reading = async () => {
      const from = sends;
      const at = performance.now();
      const counters = await cpuAndCalls(ports);
      return { counters, sends: (from + sends) / 2, at: (at + performance.now()) / 2 };
    };
    const start = await reading();
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    const end = await reading();
    const before = start.counters;
    const after = end.counters;
    const seconds = (end.at - start.at) / 1000;
    const sent = end.sends - start.sends;
    running = false;
    await loops;
    // Wake-ups of the last sends may still be on their way.
    const deadline = Date.now() + 5000;
    while (wakes < sends * SUBSCRIBERS && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const cpu = after.cpu.map((c, i) => c - before.cpu[i]!);
    return {
      masters,
      pubsub,
      load,
      sends: sent,
      seconds,
      sendsPerSecond: sent / seconds,
      sendsPerSecondPerMaster: sent / seconds / masters,
      redisCpuUsPerSend: ((cpu.reduce((a, b) => a + b, 0) - idle.reduce((a, b) => a + b, 0) * seconds) * 1e6) / sent,
      rawCpuUsPerSend: (cpu.reduce((a, b) => a + b, 0) * 1e6) / sent,
      masterCpuPercent: cpu.map((c) => (100 * c) / seconds),
      wakesPerSend: wakes / sends / SUBSCRIBERS,
      publishPerSend: (after.publish - before.publish) / sent,
      spublishPerSend: (after.spublish - before.spublish) / sent,
    };
  } finally {
    await Promise.all([...subscribers, ...appenders].map((s) => s.close()));
  }
}

export async function runScaling(): Promise<void> {
  const runs: Run[] = [];
  for (const masters of MASTERS) {
    const cluster = await startRedisCluster({ masters, replicas: 0 });
    try {
      const idle = await idleCpu(cluster);
      const fixed: Run[] = [];
      for (const pubsub of ['sharded', 'classic', 'sharded', 'classic'] as const) fixed.push(await measure(cluster, masters, pubsub, RATE * masters, idle));
      for (const pubsub of ['sharded', 'classic'] as const) {
        const mine = fixed.filter((r) => r.pubsub === pubsub);
        runs.push(mine.reduce((a, b) => (a.redisCpuUsPerSend <= b.redisCpuUsPerSend ? a : b)));
      }
      for (const pubsub of ['sharded', 'classic'] as const) runs.push(await measure(cluster, masters, pubsub, 'max', idle));
    } finally {
      await cluster.stop();
    }
  }
  const f = (n: number, d = 1) => n.toFixed(d);
  const row = (r: Run) => `| ${r.masters} | ${r.pubsub} | ${r.load === 'max' ? 'max' : f(r.load, 0)} | ${f(r.sendsPerSecond, 0)} | ${f(r.sendsPerSecondPerMaster, 0)} | ${f(r.redisCpuUsPerSend)} (${f(r.rawCpuUsPerSend)}) | ${r.masterCpuPercent.map((c) => f(c, 0)).join(' / ')} | ${f(r.publishPerSend, 2)} / ${f(r.spublishPerSend, 2)} | ${f(r.wakesPerSend, 3)} |`;
  const lines = [
    `pollgate scaling bench: ${cpus()[0]?.model ?? 'cpu'}, ${availableParallelism()} cores, Node ${process.version}; ${STREAMS} streams, ${SUBSCRIBERS} subscriber(s), ${SECONDS} s windows; fixed rate ${RATE} sends/s per master (best of 2 alternating runs), max = ${IN_FLIGHT} sends in flight`,
    '',
    '| masters | pub/sub | sends/s asked | sends/s | sends/s per master | Redis CPU µs per send, sum of masters, idle taken off (with it) | CPU % per master | PUBLISH / SPUBLISH per send | wake-ups per send |',
    '|---|---|---|---|---|---|---|---|---|',
    ...runs.filter((r) => r.load !== 'max').map(row),
    ...runs.filter((r) => r.load === 'max').map(row),
  ];
  for (const pubsub of ['sharded', 'classic'] as const) {
    const mine = runs.filter((r) => r.pubsub === pubsub && r.load !== 'max');
    const b = mine[0];
    if (!b) continue;
    lines.push('', `${pubsub}, fixed rate: Redis CPU per send relative to ${b.masters} master(s): ${mine.map((r) => `${r.masters}: ${f(r.redisCpuUsPerSend / b.redisCpuUsPerSend, 2)}x`).join(', ')}`);
  }
  const text = lines.join('\n');
  process.stdout.write(`${text}\n`);
  mkdirSync(OUT, { recursive: true });
  writeFileSync(`${OUT}/scaling.json`, JSON.stringify({ at: new Date().toISOString(), runs }, null, 2));
  writeFileSync(`${OUT}/scaling.md`, `${text}\n`);
  const bad = runs.filter((r) => r.wakesPerSend !== 1);
  if (bad.length) {
    process.stderr.write(`wake-ups lost or doubled: ${bad.map((r) => `${r.masters} ${r.pubsub} ${r.wakesPerSend}`).join(', ')}\n`);
    process.exitCode = 1;
  }
}
