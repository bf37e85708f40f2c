/**
 * Parked clients of this process, by stream. The registry subscribes the store to a stream while
 * it has local waiters on it, and on a wake-up reads the stream once for all of them (fan-out
 * costs one store read per node, not one per waiter). A wake-up that carries the appended
 * messages answers the waiters positioned right before them with no read at all. It never talks
 * to Redis itself.
 */
import type { Logger } from './log.js';
import type { Position } from './cursor.js';
import { DEFAULT_ANSWER_BYTES } from './answer-budget.js';
import { WaiterGroup } from './waiter-group.js';
import { MAX_READ, type Store, type StoreListener, type StreamRead, type WakeHint } from './store/store.js';

/** A parked client: a long-poll, an SSE stream or a WebSocket subscription. */
export interface Waiter {
  readonly streams: readonly string[];
  /** Largest number of messages the waiter takes in one delivery. */
  readonly limit: number;
  /** The waiter's current position in a stream. */
  position(stream: string): Position;
  /**
   * A fresh snapshot of a stream that grew; shared by every waiter on it, so do not mutate it.
   * Apply it synchronously (move the position or leave the registry): waiters still behind the
   * wake-up's head after onRead returns get a store read.
   */
  onRead(read: StreamRead): void;
  /** Wake-ups may have been lost: re-read every stream. */
  onResync(): void;
  /** Its place among the registry's waiters while registered; the registry's own (WaiterLink). */
  registryLink?: WaiterLink;
}

/**
 * A waiter's place in the registry's list of every waiter. A list, not a Set: a Set that waiters
 * join and leave all the time replaces its hash table now and then, and a table that was old when
 * it was replaced still points at the young waiters it held. The scavenger keeps whatever an old
 * object points to until the next full collection, so each of those waiters, a parked poll with
 * its request and response, was copied twice and promoted (docs/PERFORMANCE.md, "No table of
 * every parked poll"). Unlinking writes only to links that are still in the list, and clears the
 * one that leaves.
 */
export interface WaiterLink {
  /** The registry whose list holds it: a waiter is in one registry at a time. */
  registry: WaiterRegistry;
  waiter?: Waiter;
  prev?: WaiterLink;
  next?: WaiterLink;
}

/** Most waiters answered per turn of the event loop during a fan-out (the first slice's size). */
export const FANOUT_SLICE = 256;
/** Fewest waiters per turn, however slow their answers. */
const FANOUT_SLICE_MIN = 16;
/** Time a slice may hold the loop, answers written included (ms); the event-loop lag target is 50 ms p99. */
const FANOUT_SLICE_BUDGET_MS = 10;

interface StreamEntry {
  waiters: WaiterGroup<Waiter>;
  /** Resolves once the store delivers wake-ups for this stream; undefined once they flow. */
  subscribing?: Promise<void>;
  /** A read for this stream is in flight; `again` asks for one more when it lands. */
  reading: boolean;
  again: boolean;
}

export interface RegistryOptions {
  /**
   * Bytes one answer may carry (limits.answerBytes, default 1 MiB): the registry's shared reads
   * are bounded by it, and the transports that park here (long-poll, Feed) answer within it.
   */
  answerBytes?: number;
}

export class WaiterRegistry implements StoreListener {
  private readonly byStream = new Map<string, StreamEntry>();
  /** Every registered waiter (WaiterLink says why a list), oldest first, and how many. */
  private first?: WaiterLink;
  private last?: WaiterLink;
  private registered = 0;
  /** Bytes of messages one answer may carry (limits.answerBytes). */
  readonly answerBytes: number;

  constructor(private readonly store: Store, private readonly log: Logger, options: RegistryOptions = {}) {
    this.answerBytes = options.answerBytes ?? DEFAULT_ANSWER_BYTES;
    store.setListener(this);
  }

  /** Number of parked waiters in this process. */
  get size(): number {
    return this.registered;
  }

  /** Streams with at least one local waiter (and so a store subscription). */
  get streamCount(): number {
    return this.byStream.size;
  }

  /**
   * Registers a waiter and resolves once wake-ups for all its streams are flowing, or returns
   * undefined when they already are. After that the caller must re-read the log once: a message
   * appended before the subscription took effect wakes nobody. The caller must call remove()
   * exactly once, whatever happens.
   */
  add(waiter: Waiter): Promise<void> | undefined {
    const held = waiter.registryLink;
    if (held && held.registry !== this) throw new Error('this waiter is registered with another registry');
    if (!held) {
      const link: WaiterLink = { registry: this, waiter, prev: this.last, next: undefined };
      if (this.last) this.last.next = link;
      else this.first = link;
      this.last = link;
      waiter.registryLink = link;
      this.registered++;
    }
    let pending: Promise<void>[] | undefined;
    for (const stream of waiter.streams) {
      let entry = this.byStream.get(stream);
      if (!entry) {
        entry = this.subscribe(stream);
        this.byStream.set(stream, entry);
      }
      entry.waiters.add(waiter);
      if (entry.subscribing) (pending ??= []).push(entry.subscribing);
    }
    if (!pending) return undefined;
    return pending.length === 1 ? pending[0] : Promise.all(pending).then(() => undefined);
  }

  private subscribe(stream: string): StreamEntry {
    const entry: StreamEntry = { waiters: new WaiterGroup(), reading: false, again: false };
    let subscribing: Promise<void> | undefined;
    try {
      subscribing = this.store.subscribe(stream);
    } catch (err) {
      // Reported like an asynchronous failure: the waiter's add() rejects, nothing escapes.
      subscribing = Promise.reject(err);
    }
    if (!subscribing) return entry;
    entry.subscribing = subscribing.then(
      () => {
        entry.subscribing = undefined;
      },
      (err: unknown) => {
        // A failed subscribe is retried by the next waiter on the stream.
        if (this.byStream.get(stream) === entry) this.byStream.delete(stream);
        throw err;
      },
    );
    return entry;
  }

  remove(waiter: Waiter): void {
    const link = waiter.registryLink;
    if (!link || link.registry !== this) return;
    if (link.prev) link.prev.next = link.next;
    else this.first = link.next;
    if (link.next) link.next.prev = link.prev;
    else this.last = link.prev;
    link.waiter = link.prev = link.next = undefined;
    waiter.registryLink = undefined;
    this.registered--;
    for (const stream of waiter.streams) {
      const entry = this.byStream.get(stream);
      if (!entry || !entry.waiters.delete(waiter) || entry.waiters.size > 0) continue;
      this.byStream.delete(stream);
      void this.store.unsubscribe(stream);
    }
  }

  wake(stream: string, hint: WakeHint): void {
    const entry = this.byStream.get(stream);
    if (!entry) return; // nobody here waits on it any more
    // A read in flight may land after the hint with an older snapshot: let it run, then re-read.
    if (hint.messages?.length && !entry.reading) this.answerFromHint(stream, entry, hint, hint.messages);
    let behind = false;
    for (const w of entry.waiters) {
      const p = w.position(stream);
      if (p.epoch !== hint.epoch || p.seq < hint.lastSeq) {
        behind = true;
        break;
      }
    }
    if (!behind) {
      this.log.trace({ stream }, 'ignore stale wake');
      return;
    }
    void this.fanOut(stream, entry);
  }

  resync(streams?: readonly string[]): void {
    if (!streams) {
      this.log.info({ waiters: this.registered }, 'resync: waking every waiter to re-read the log');
      for (const w of this.everyWaiter()) w.onResync();
      return;
    }
    const waiters = new Set<Waiter>();
    for (const stream of streams) for (const w of this.byStream.get(stream)?.waiters ?? []) waiters.add(w);
    this.log.info({ streams: streams.length, waiters: waiters.size }, 'resync: waking the waiters of streams whose wake-ups may be lost');
    for (const w of waiters) w.onResync();
  }

  /** Calls fn on every waiter (used at shutdown); waiters remove themselves. */
  forEach(fn: (w: Waiter) => void): void {
    for (const w of this.everyWaiter()) fn(w);
  }

  /** The registered waiters, oldest first, as an array: the caller may remove them as it goes. */
  private everyWaiter(): Waiter[] {
    const all: Waiter[] = [];
    for (let link = this.first; link; link = link.next) all.push(link.waiter!);
    return all;
  }

  /**
   * Hands the hint's messages to the waiters positioned inside the range it covers. Exact for
   * them: same epoch, and every message after their position up to the head is in the hint, so
   * the snapshot below answers just as a read would. Anyone else (another epoch, a position
   * before the range, which may need a gap or reset) is left to the read, and so is a fan-out
   * larger than one slice.
   */
  private answerFromHint(stream: string, entry: StreamEntry, hint: WakeHint, messages: readonly string[]): void {
    const after = hint.lastSeq - messages.length;
    // firstSeq is where the hint starts, not the log's oldest: only positions >= after read it.
    const read: StreamRead = { stream, epoch: hint.epoch, lastSeq: hint.lastSeq, firstSeq: after + 1, after, messages: messages as string[] };
    const ready = [...entry.waiters].filter((w) => {
      const p = w.position(stream);
      return p.epoch === hint.epoch && p.seq >= after && p.seq < hint.lastSeq;
    });
    // A broadcast to thousands goes through the sliced fan-out (one read) so the loop keeps turning.
    if (ready.length > FANOUT_SLICE) return;
    for (const w of ready) w.onRead(read);
  }

  /**
   * Hands one read to every waiter of the stream, a slice at a time with a turn of the event
   * loop in between: answering 5,000 parked polls in one go blocked the loop for the whole
   * fan-out (docs/PERFORMANCE.md). A slice is sized so that it and the answers it causes (written
   * in the microtasks that follow it) take about FANOUT_SLICE_BUDGET_MS. Waiters that left
   * meanwhile are skipped.
   */
  private async handOut(entry: StreamEntry, read: StreamRead): Promise<void> {
    const waiters = [...entry.waiters];
    const { stream } = read;
    // A waiter whose position moved while it waited for its slice (its transport read on its
    // own) may now be past this snapshot, which would look like lost writes: leave it be.
    const at = waiters.map((w) => w.position(stream));
    let size = FANOUT_SLICE;
    let began = performance.now();
    for (let i = 0; i < waiters.length; i += size) {
      if (i > 0) {
        await new Promise((r) => setImmediate(r));
        const took = Math.max(performance.now() - began, 0.01);
        size = Math.max(FANOUT_SLICE_MIN, Math.min(FANOUT_SLICE, Math.round((size * FANOUT_SLICE_BUDGET_MS) / took)));
        began = performance.now();
      }
      for (let k = i; k < Math.min(i + size, waiters.length); k++) {
        const w = waiters[k]!;
        const p = w.position(stream);
        if (entry.waiters.has(w) && p.seq === at[k]!.seq && p.epoch === at[k]!.epoch) w.onRead(read);
      }
    }
  }

  /** One read from the lowest position of the stream's waiters (at most one answer's bytes), handed to all of them. */
  private async fanOut(stream: string, entry: StreamEntry): Promise<void> {
    if (entry.reading) {
      entry.again = true;
      return;
    }
    entry.reading = true;
    try {
      do {
        entry.again = false;
        let after = Number.MAX_SAFE_INTEGER;
        let limit = 0;
        for (const w of entry.waiters) {
          after = Math.min(after, w.position(stream).seq);
          limit = Math.max(limit, w.limit);
        }
        if (entry.waiters.size === 0) return;
        let read: StreamRead;
        try {
          // No more than one answer's bytes: a waiter further on reads the rest on its own.
          read = await this.store.read(stream, after, Math.min(limit, MAX_READ), this.answerBytes);
        } catch (err) {
          // Waiters stay parked: the next wake-up or their timeout answers them.
          this.log.warn({ stream, err: (err as Error).message }, 'fan-out read failed');
          return;
        }
        await this.handOut(entry, read);
      } while (entry.again);
    } finally {
      entry.reading = false;
    }
  }
}
