/**
 * The load generator's HTTP side: undici pools with one keep-alive connection per simulated
 * client, /poll and /send calls, and the client token every poller uses.
 */
import { setMaxListeners } from 'node:events';
import { Pool } from 'undici';
import { Auth } from '../lib/auth.js';
import { BENCH_API_KEY, BENCH_SECRET } from './gateway.js';

export interface Message {
  stream: string;
  seq: number;
  id: string;
  data: { n: number; t: number };
}

export interface PollAnswer {
  messages: Message[];
  cursor: string;
  gaps?: unknown[];
  resets?: string[];
}

/** A client token that may read every bench stream (verified once by the gateway, then cached). */
export async function readerToken(): Promise<string> {
  const auth = new Auth({ secret: BENCH_SECRET, apiKeys: [], clockToleranceSeconds: 30 });
  return auth.mintToken({ sub: 'bench-reader', streams: ['*'], ttlSeconds: 3600 });
}

/** Every load-generator connection: keep-alive, no pipelining, and timeouts longer than any hold. */
export const CONNECTION_OPTIONS = {
  pipelining: 1,
  keepAliveTimeout: 120_000,
  keepAliveMaxTimeout: 120_000,
  headersTimeout: 120_000,
  bodyTimeout: 120_000,
  connect: { timeout: 30_000 },
} as const;

export function pool(url: string, connections: number): Pool {
  return new Pool(url, { connections, ...CONNECTION_OPTIONS });
}

/** An AbortController whose signal may be shared by thousands of requests without a warning. */
export function sharedAbort(): AbortController {
  const ac = new AbortController();
  setMaxListeners(0, ac.signal);
  return ac;
}

export interface PollOptions {
  streams: string;
  cursor?: string;
  timeoutS: number;
  limit?: number;
  since?: 'earliest' | 'now';
  signal?: AbortSignal;
}

/** One GET /poll; throws on a non-200 answer. */
export async function poll(p: Pool, token: string, o: PollOptions): Promise<PollAnswer> {
  let path = `/poll?streams=${encodeURIComponent(o.streams)}&timeout=${o.timeoutS}`;
  if (o.cursor) path += `&cursor=${o.cursor}`;
  if (o.limit) path += `&limit=${o.limit}`;
  if (o.since) path += `&since=${o.since}`;
  const r = await p.request({ method: 'GET', path, headers: { authorization: `Bearer ${token}` }, signal: o.signal });
  const text = await r.body.text();
  if (r.statusCode !== 200) throw new Error(`poll ${r.statusCode}: ${text.slice(0, 200)}`);
  return JSON.parse(text) as PollAnswer;
}

export interface SendResult {
  stream: string;
  seq: number;
  id: string;
  duplicate?: boolean;
}

/** One POST /send of one message with the API key; throws on a non-200 answer. */
export async function send(p: Pool, stream: string, data: unknown): Promise<SendResult> {
  const r = await p.request({
    method: 'POST',
    path: '/send',
    headers: { authorization: `Bearer ${BENCH_API_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ stream, data }),
  });
  const text = await r.body.text();
  if (r.statusCode !== 200) throw new Error(`send ${r.statusCode}: ${text.slice(0, 200)}`);
  return (JSON.parse(text) as { results: SendResult[] }).results[0]!;
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

/** Milliseconds from one publish until 50, 99 and 100% of the receivers had it. */
export interface ArrivalTimes {
  p50Ms: number;
  p99Ms: number;
  p100Ms: number;
}

/** The arrival percentiles of a broadcast, rounded (`arrivals` in any order; it is sorted in place). */
export function arrivalTimes(arrivals: number[]): ArrivalTimes {
  arrivals.sort((a, b) => a - b);
  return { p50Ms: round(percentile(arrivals, 50)), p99Ms: round(percentile(arrivals, 99)), p100Ms: round(arrivals[arrivals.length - 1] ?? NaN) };
}

/** Collected correctness violations: any one fails the whole run. */
export class Violations {
  readonly list: string[] = [];
  add(scenario: string, what: string): void {
    if (this.list.length < 1000) this.list.push(`${scenario}: ${what}`);
  }

  /** Ends a bench script: exit 1, listing the first twenty, when any was seen; else exit 0. */
  exitProcess(): never {
    if (this.list.length) {
      console.error(`\nFAILED: ${this.list.length} violations`);
      for (const v of this.list.slice(0, 20)) console.error(`  ${v}`);
      process.exit(1);
    }
    process.exit(0);
  }
}

export const round = (v: number, digits = 1) => Math.round(v * 10 ** digits) / 10 ** digits;
