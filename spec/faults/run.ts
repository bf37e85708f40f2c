/**
 * One fault-injection run: boot the testbed, start pollers and senders, let the nemesis loose for
 * `seconds`, heal, let every poller catch up with a final marker per stream, then check.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { check, formatReport, type History, type Report } from './checker.js';
import { Nemesis } from './nemesis.js';
import { longPoll, Poller, type Transport } from './pollers.js';
import { sse, websocket } from './stream-transports.js';
import { Sender } from './senders.js';
import { Testbed } from './testbed.js';

export interface RunOptions {
  seconds: number;
  streams?: number;
  senders?: number;
  /** One poller per entry; default 2 long-poll, 2 SSE, 2 WebSocket. */
  transports?: Transport[];
  /** Where the text report goes (created); printed either way. */
  reportFile?: string;
  print?: (line: string) => void;
}

export interface RunResult {
  report: Report;
  text: string;
}

/** Apply the faults for `seconds`, then check. Always stops every process it started. */
export async function runFaults(options: RunOptions): Promise<RunResult> {
  const print = options.print ?? ((l: string) => process.stdout.write(`${l}\n`));
  const streams = Array.from({ length: options.streams ?? 4 }, (_, i) => `faults:${i}`);
  const transports = options.transports ?? [longPoll, longPoll, sse, sse, websocket, websocket];
  const bed = await Testbed.start(3);
  const nodes = () => bed.nodes();
  const pollers = transports.map((t, i) => new Poller({ name: `${t.name}-${i}`, transport: t, streams, apiKey: bed.apiKey, nodes }));
  const senders = Array.from({ length: options.senders ?? 4 }, (_, i) => new Sender({ name: `s${i}`, streams, apiKey: bed.apiKey, nodes, pauseMs: 20, timeoutMs: 3000 }));
  const nemesis = new Nemesis({ bed, quietMs: [1000, 4000], dropClients: () => [...pollers, ...senders].forEach((c) => c.drop()) });
  const marker = new Sender({ name: 'final', streams, apiKey: bed.apiKey, nodes, pauseMs: 0, timeoutMs: 3000 });
  const started = Date.now();
  try {
    // Every stream exists before anyone polls, so pollers hold real positions from the start.
    for (const s of streams) await marker.sendUntilAcked(s, `init-${s.replace(/\W/g, "_")}`, -1);
    pollers.forEach((p) => p.start());
    senders.forEach((s) => s.start());
    nemesis.start();
    await new Promise((r) => setTimeout(r, options.seconds * 1000));
    await nemesis.stop();
    // Heal, then a few quiet seconds of traffic before the senders stop.
    await new Promise((r) => setTimeout(r, 3000));
    await Promise.all(senders.map((s) => s.stop()));
    const finals = [];
    for (const [i, s] of streams.entries()) finals.push(await marker.sendUntilAcked(s, `final-${i}`, i));
    const deadline = Date.now() + 60_000;
    while (!pollers.every((p) => streams.every((s, i) => p.received(s).has(`final-${i}`)))) {
      if (Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await Promise.all(pollers.map((p) => p.stop()));

    const history: History = {
      streams,
      acks: [...senders, marker].flatMap((s) => s.acks),
      indeterminate: [...senders, marker].flatMap((s) => s.indeterminate),
      pollers: pollers.map((p) => p.history),
      redisCrashes: nemesis.redisCrashes,
      crashWindowMs: 2000,
      finalLog: await readAll(bed, streams),
    };
    const report = check(history);
    const text = [
      `pollgate fault run: ${options.seconds} s of faults, ${Math.round((Date.now() - started) / 1000)} s in all, ${streams.length} streams, ${senders.length} senders, ${pollers.length} pollers (${[...new Set(transports.map((t) => t.name))].join(', ')}), 3 gateways, 1 Redis (AOF everysec)`,
      `faults: ${[...nemesis.counts].map(([f, n]) => `${f} ${n}`).join(', ')}`,
      `poller reconnects: ${pollers.map((p) => `${p.history.name} ${p.reconnects}`).join(', ')}`,
      formatReport(report),
      `verdict: ${report.ok ? 'OK' : 'FAILED'}`,
      '',
      'nemesis log:',
      ...nemesis.log,
    ].join('\n');
    print(text);
    if (options.reportFile) {
      mkdirSync(new URL('.', `file://${options.reportFile}`).pathname, { recursive: true });
      writeFileSync(options.reportFile, `${text}\n`);
    }
    return { report, text };
  } finally {
    await nemesis.stop();
    await Promise.allSettled([...senders, marker].map((s) => s.stop()));
    await Promise.allSettled(pollers.map((p) => p.stop()));
    await bed.stop();
  }
}

/** Every retained message of each stream, read through one node, 1000 at a time. */
async function readAll(bed: Testbed, streams: string[]): Promise<Map<string, { seq: number; id: string }[]>> {
  const out = new Map<string, { seq: number; id: string }[]>();
  for (const stream of streams) {
    const all: { seq: number; id: string }[] = [];
    let cursor: string | undefined;
    for (;;) {
      const q = new URLSearchParams({ streams: stream, timeout: '0', limit: '1000' });
      if (cursor) q.set('cursor', cursor);
      else q.set('since', 'earliest');
      const res = await fetch(`${bed.nodes()[0]}/poll?${q}`, { headers: { authorization: `Bearer ${bed.apiKey}` } });
      if (res.status !== 200) throw new Error(`final read answered ${res.status}`);
      const batch = (await res.json()) as { messages: { seq: number; id: string }[]; cursor: string };
      if (batch.messages.length === 0) break;
      all.push(...batch.messages.map((m) => ({ seq: m.seq, id: m.id })));
      cursor = batch.cursor;
    }
    out.set(stream, all);
  }
  return out;
}
