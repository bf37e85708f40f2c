/**
 * What the peer scenarios share: subscribers on one keep-alive connection each, started in
 * chunks; the per-stream order check of every delivery; a closed-loop publisher.
 */
import type { Client } from 'undici';
import type { Violations } from '../client.js';
import { sleep } from '../gateway.js';
import { sharedAbort } from '../client.js';
import { connection, type Payload, type Subscription } from './driver.js';
import type { PeerTarget } from './targets.js';

export interface PeerContext {
  target: PeerTarget;
  violations: Violations;
  /** Unique per run: every scenario uses fresh streams (names of [A-Za-z0-9-], valid for every protocol). */
  tag: string;
}

export interface Subscribers {
  /** Ends every subscriber, closes its connection, waits (up to 10 s) until the target holds no poll. */
  close(): Promise<void>;
}

const CHUNK = 500;

/**
 * Subscribes one client per entry of `streams`, each on its own connection, in chunks of 500,
 * each once the previous chunk is subscribed and parked (a burst of thousands of connects
 * overflows the listen backlog). Throws if any subscribe fails.
 */
export async function subscribeAll(
  ctx: PeerContext, streams: string[], onData: (i: number, items: Payload[], now: number) => void, onProblem: (what: string) => void,
): Promise<Subscribers> {
  const { gw, driver } = ctx.target;
  const abort = sharedAbort();
  const conns: Client[] = [];
  const subs: Subscription[] = [];
  const close = async () => {
    abort.abort();
    await Promise.allSettled(subs.map((s) => s.done));
    await Promise.all(conns.map((c) => c.destroy()));
    await gw.waitFor('subscribers to leave', (s) => s.parkedPolls === 0, 10_000).catch(() => undefined);
  };
  try {
    for (let i = 0; i < streams.length; ) {
      const end = Math.min(streams.length, i + CHUNK);
      const ready: Promise<void>[] = [];
      for (; i < end; i++) {
        const k = i;
        const c = connection(gw.url);
        conns.push(c);
        const s = driver.subscribe(c, streams[k]!, { onData: (items, now) => onData(k, items, now), onProblem }, abort.signal);
        subs.push(s);
        ready.push(s.ready);
      }
      await Promise.all(ready);
      await gw.waitFor(`${end} of ${streams.length} subscribers to park`, (s) => s.parkedPolls >= end, 60_000);
    }
  } catch (err) {
    await close();
    throw err;
  }
  return { close };
}

/** Per stream, payload n must arrive as 0, 1, 2, ... exactly once each: anything else is loss, duplication or reordering. */
export class Deliveries {
  /** The next n expected on each stream (= payloads received so far, when nothing went wrong). */
  readonly next: Int32Array;
  count = 0;
  constructor(private readonly name: string, private readonly streams: string[], private readonly violations: Violations) {
    this.next = new Int32Array(streams.length);
  }

  receive(i: number, items: Payload[]): void {
    for (const { n } of items) {
      if (n !== this.next[i]) this.violations.add(this.name, `${this.streams[i]}: got n=${n}, expected ${this.next[i]} (loss, duplicate or reorder)`);
      this.next[i] = Math.max(this.next[i]!, n + 1);
      this.count++;
    }
  }

  /** Waits (up to `timeoutMs`) until every stream got `published[i]` payloads; false if not. */
  async drained(published: number[], timeoutMs = 20_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (published.every((p, i) => this.next[i]! >= p)) return true;
      if (Date.now() > deadline) return false;
      await sleep(20);
    }
  }

  /** Reports every stream whose count differs from `published` (after a drain). */
  check(published: number[]): void {
    published.forEach((p, i) => {
      if (this.next[i] !== p) this.violations.add(this.name, `${this.streams[i]}: ${p} published, ${this.next[i]} delivered`);
    });
  }
}

/**
 * Publishes round-robin over `streams.length` streams with `inFlight` publishes outstanding
 * (closed loop) until `seconds` have passed; `publishOne(i)` publishes the next payload of stream i.
 * Returns how many were issued.
 */
export async function closedLoop(count: number, inFlight: number, seconds: number, publishOne: (i: number) => Promise<void>, start = { k: 0 }): Promise<number> {
  const end = performance.now() + seconds * 1000;
  const k0 = start.k;
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (performance.now() < end) await publishOne(start.k++ % count);
  }));
  return start.k - k0;
}

/**
 * Publishes round-robin at `rate` per second (open loop, a 2 ms tick) for `seconds`, never more
 * than `inFlight` outstanding: every target then does the same work per second, so CPU per
 * operation compares without the load generator's saturation (a busy receiver makes loopback
 * writes cheaper for the sender). Returns how many were issued.
 */
export async function pacedLoop(count: number, inFlight: number, seconds: number, rate: number, publishOne: (i: number) => Promise<void>, start = { k: 0 }): Promise<number> {
  const t0 = performance.now();
  const total = Math.round(rate * seconds);
  const pending = new Set<Promise<void>>();
  let issued = 0;
  while (issued < total) {
    const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * rate));
    while (issued < due && pending.size < inFlight) {
      issued++;
      const p: Promise<void> = publishOne(start.k++ % count).finally(() => pending.delete(p));
      pending.add(p);
    }
    await sleep(2);
  }
  await Promise.all(pending);
  return issued;
}
