/**
 * The Jepsen-style checker of the fault-injection suite: a pure function from what the senders
 * and pollers recorded to a per-stream report, and the verdict.
 *
 * Vocabulary (docs/GUARANTEES.md defines the promise it checks):
 * - acknowledged: /send answered 200 for the id; indeterminate: no 200 ever came (timeout, 503,
 *   cut connection) - it may or may not be stored; recovered: indeterminate but delivered.
 * - a poller's history per stream is cut into segments by resets; inside a segment the client
 *   dedupes by seq (a seq at or below the last one is dropped and counted as `redelivered`).
 * - lost: an acknowledged message some poller never received, unless excused: its seq lies in a
 *   gap that poller was told of, or it was acknowledged within the crash window of a Redis
 *   SIGKILL (the appendfsync everysec window) and that poller was told of a reset after the crash.
 * - duplicated: one id at two different seqs inside one segment (stored twice).
 * - reordered: inside one segment, a sender's message after a later message of the same sender
 *   (senders send one message at a time, so ack order is send order).
 * - holes: inside one segment, seqs that jump without a reported gap.
 */

export interface Ack {
  stream: string;
  id: string;
  seq: number;
  sender: string;
  /** Sender-local counter: increases with every message the sender sends. */
  n: number;
  /** ms epoch when the 200 arrived. */
  at: number;
}

export interface Indeterminate {
  stream: string;
  id: string;
}

export type PollEvent =
  | { type: 'msg'; seq: number; id: string; at: number }
  | { type: 'reset'; at: number }
  | { type: 'gap'; from: number; to: number; at: number };

export interface PollerHistory {
  name: string;
  /** Events per stream, in the order received. */
  streams: Map<string, PollEvent[]>;
}

export interface History {
  streams: string[];
  acks: Ack[];
  indeterminate: Indeterminate[];
  pollers: PollerHistory[];
  /** ms epoch of every Redis SIGKILL (a crash that may lose the unsynced AOF tail). */
  redisCrashes: number[];
  /** Acks this long before a crash (and up to 1 s after, for the answer in flight) may be lost. */
  crashWindowMs: number;
  /** Every stored message per stream at the end (one read of the retained log), for store-level duplicates. */
  finalLog?: Map<string, { seq: number; id: string }[]>;
}

export interface StreamReport {
  stream: string;
  acknowledged: number;
  indeterminate: number;
  recovered: number;
  /** Acknowledged messages received by every poller (counted once per message). */
  delivered: number;
  lost: number;
  lostInCrashWindow: number;
  duplicated: number;
  reordered: number;
  holes: number;
  gaps: number;
  resets: number;
  redelivered: number;
  /** Short descriptions of the first few violations. */
  examples: string[];
}

export interface Report {
  streams: StreamReport[];
  ok: boolean;
}

/** id embeds the sender and its counter as `<sender>-<n>`. */
export function idOf(sender: string, n: number): string {
  return `${sender}-${n}`;
}

function parseId(id: string): { sender: string; n: number } | undefined {
  const i = id.lastIndexOf('-');
  const n = Number(id.slice(i + 1));
  return i > 0 && Number.isInteger(n) ? { sender: id.slice(0, i), n } : undefined;
}

interface PollerView {
  received: Set<string>;
  gaps: { from: number; to: number }[];
  resetTimes: number[];
}

function walk(events: PollEvent[], r: StreamReport, note: (s: string) => void): PollerView {
  const view: PollerView = { received: new Set(), gaps: [], resetTimes: [] };
  let last = -1; // -1: nothing yet in this segment
  let seqOfId = new Map<string, number>();
  let maxN = new Map<string, number>();
  for (const e of events) {
    if (e.type === 'reset') {
      r.resets++;
      view.resetTimes.push(e.at);
      last = -1;
      seqOfId = new Map();
      maxN = new Map();
      continue;
    }
    if (e.type === 'gap') {
      r.gaps++;
      view.gaps.push({ from: e.from, to: e.to });
      last = Math.max(last, e.to);
      continue;
    }
    if (last >= 0 && e.seq <= last) {
      r.redelivered++;
      continue;
    }
    if (last >= 0 && e.seq !== last + 1) {
      r.holes++;
      note(`hole: seq ${last} -> ${e.seq} without a gap`);
    }
    last = e.seq;
    const prevSeq = seqOfId.get(e.id);
    if (prevSeq !== undefined && prevSeq !== e.seq) {
      r.duplicated++;
      note(`duplicate: id ${e.id} at seqs ${prevSeq} and ${e.seq}`);
    }
    seqOfId.set(e.id, e.seq);
    const p = parseId(e.id);
    if (p) {
      const max = maxN.get(p.sender) ?? -1;
      if (p.n < max) {
        r.reordered++;
        note(`reordered: ${e.id} after ${idOf(p.sender, max)}`);
      }
      maxN.set(p.sender, Math.max(max, p.n));
    }
    view.received.add(e.id);
  }
  return view;
}

/** Checks a history; `ok` is false on any lost, duplicated, reordered or unexplained hole. */
export function check(h: History): Report {
  const reports: StreamReport[] = [];
  for (const stream of h.streams) {
    const r: StreamReport = {
      stream, acknowledged: 0, indeterminate: 0, recovered: 0, delivered: 0, lost: 0, lostInCrashWindow: 0,
      duplicated: 0, reordered: 0, holes: 0, gaps: 0, resets: 0, redelivered: 0, examples: [],
    };
    const note = (s: string) => {
      if (r.examples.length < 10) r.examples.push(s);
    };
    const acks = new Map<string, Ack>();
    for (const a of h.acks) if (a.stream === stream) acks.set(a.id, a);
    r.acknowledged = acks.size;
    const views = h.pollers.map((p) => ({ name: p.name, view: walk(p.streams.get(stream) ?? [], r, (s) => note(`${p.name}: ${s}`)) }));

    const inWindow = (a: Ack) => h.redisCrashes.find((c) => a.at >= c - h.crashWindowMs && a.at <= c + 1000);
    for (const a of acks.values()) {
      let everywhere = true;
      for (const { name, view } of views) {
        if (view.received.has(a.id)) continue;
        everywhere = false;
        if (view.gaps.some((g) => a.seq >= g.from && a.seq <= g.to)) continue;
        const crash = inWindow(a);
        if (crash !== undefined && view.resetTimes.some((t) => t >= crash)) {
          r.lostInCrashWindow++;
          continue;
        }
        r.lost++;
        note(`${name}: lost ${a.id} (seq ${a.seq}, acknowledged at ${new Date(a.at).toISOString()})`);
      }
      if (everywhere) r.delivered++;
    }

    const pending = new Set(h.indeterminate.filter((i) => i.stream === stream && !acks.has(i.id)).map((i) => i.id));
    r.indeterminate = pending.size;
    for (const id of pending) if (views.some(({ view }) => view.received.has(id))) r.recovered++;

    const seen = new Map<string, number>();
    for (const m of h.finalLog?.get(stream) ?? []) {
      const prev = seen.get(m.id);
      if (prev !== undefined) {
        r.duplicated++;
        note(`stored twice: ${m.id} at seqs ${prev} and ${m.seq}`);
      }
      seen.set(m.id, m.seq);
    }
    reports.push(r);
  }
  return { streams: reports, ok: reports.every((r) => r.lost === 0 && r.duplicated === 0 && r.reordered === 0 && r.holes === 0) };
}

/** A fixed-width table of the per-stream numbers. */
export function formatReport(report: Report): string {
  const cols = ['acknowledged', 'delivered', 'lost', 'lostInCrashWindow', 'duplicated', 'reordered', 'holes', 'gaps', 'resets', 'redelivered', 'indeterminate', 'recovered'] as const;
  const head = ['stream', ...cols];
  const rows = report.streams.map((s) => [s.stream, ...cols.map((c) => String(s[c]))]);
  const total = ['total', ...cols.map((c) => String(report.streams.reduce((n, s) => n + s[c], 0)))];
  const all = [head, ...rows, total];
  const widths = head.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  const lines = all.map((r) => r.map((c, i) => c.padStart(widths[i]!)).join('  '));
  const examples = report.streams.flatMap((s) => s.examples.map((e) => `  ${s.stream}: ${e}`));
  return [...lines, ...(examples.length ? ['violations:', ...examples] : [])].join('\n');
}
