/**
 * Continuous delivery for transports that stay open (WebSocket, SSE): a Feed holds a connection's
 * positions, registers one waiter per stream with the WaiterRegistry, and pushes batches to a sink
 * one at a time, so batches never interleave or reorder and positions move only past what was
 * written. Wake-ups are coalesced per stream: a client that falls behind costs reads, not memory.
 */
import { NO_POSITION, type Position } from '../cursor.js';
import { hasNews, makeBatch, messagesBytes, readStreams, resolve, type Batch, type Budget, type StreamDelivery } from '../delivery.js';
import type { Logger } from '../log.js';
import type { Store, StreamRead } from '../store/store.js';
import type { Waiter, WaiterLink, WaiterRegistry } from '../waiters.js';

/** Where a feed writes. Writes are synchronous; the returned promise settles once flushed to the socket. */
export interface FeedSink {
  /** Writes one batch; `before` holds the positions the client had before it. */
  write(batch: Batch, before: ReadonlyMap<string, Position>): Promise<void>;
  /** Bytes written but not yet flushed to the socket. */
  bufferedBytes(): number;
  /** The client does not read (buffer above the limit): the transport closes it; the feed is closed first. */
  overflow(): void;
}

export interface FeedOptions {
  store: Store;
  registry: WaiterRegistry;
  log: Logger;
  /** Messages per batch and per store read; a batch's bytes are bounded by the registry's answerBytes. */
  limit: number;
  maxBufferedBytes: number;
}

/** After a failed store read, the feed tries again this much later (Redis reconnects also resync). */
const RETRY_MS = 1000;

/** One stream of a feed, as the registry sees it. */
class StreamWaiter implements Waiter {
  readonly streams: readonly string[];
  registryLink?: WaiterLink;
  constructor(private readonly feed: Feed, readonly stream: string) {
    this.streams = [stream];
  }
  get limit(): number {
    return this.feed.limit;
  }
  position(): Position {
    return this.feed.positions.get(this.stream) ?? NO_POSITION;
  }
  onRead(read: StreamRead): void {
    this.feed.wake(this.stream, read);
  }
  onResync(): void {
    this.feed.wake(this.stream, null);
  }
}

/**
 * Whether a pushed snapshot can be applied to a position. Snapshots are shared and may be older
 * than what this feed already delivered (it re-reads on its own), and an old snapshot must never
 * look like a reset: anything doubtful is read again.
 */
function judge(pos: Position, read: StreamRead): 'use' | 'skip' | 'reread' {
  if (read.epoch === '') return pos.seq === 0 ? 'skip' : 'reread';
  if (pos.seq === 0) return 'use';
  if (pos.epoch !== read.epoch || read.lastSeq < pos.seq) return 'reread';
  return read.lastSeq === pos.seq ? 'skip' : 'use';
}

export class Feed {
  /** Subscribed streams in subscription order, at what the client has been sent. */
  positions = new Map<string, Position>();
  private readonly waiters = new Map<string, StreamWaiter>();
  /** Streams to look at: a pushed snapshot, or null for a fresh read. */
  private pending = new Map<string, StreamRead | null>();
  private settled: Array<() => void> = [];
  private pumping = false;
  private closed = false;
  private retry?: NodeJS.Timeout;
  private readonly ended: Promise<void>;
  private end!: () => void;

  constructor(private readonly sink: FeedSink, private readonly options: FeedOptions) {
    this.ended = new Promise((r) => (this.end = r));
  }

  get limit(): number {
    return this.options.limit;
  }

  /** What one batch may carry: `limit` messages and the registry's answerBytes (limits.answerBytes). */
  get budget(): Budget {
    return { limit: this.options.limit, bytes: this.options.registry.answerBytes };
  }

  get size(): number {
    return this.positions.size;
  }

  /**
   * Subscribes streams that are not subscribed yet, at the given positions: reads them at once,
   * registers them, then reads them again (a message appended before the registration took effect
   * woke nobody). Resolves once that second read was written; throws when the store could not
   * subscribe, with those streams dropped again.
   */
  async add(start: ReadonlyMap<string, Position>): Promise<string[]> {
    const added: StreamWaiter[] = [];
    for (const [stream, pos] of start) {
      if (this.positions.has(stream) || this.closed) continue;
      this.positions.set(stream, pos);
      const w = new StreamWaiter(this, stream);
      this.waiters.set(stream, w);
      added.push(w);
    }
    const streams = added.map((w) => w.stream);
    if (added.length === 0) return streams;
    void this.refresh(streams);
    try {
      await Promise.all(added.map((w) => this.options.registry.add(w)));
    } catch (err) {
      this.remove(streams);
      throw err;
    }
    await this.refresh(streams);
    return streams;
  }

  /** Stops delivering these streams; their positions leave the cursor. */
  remove(streams: readonly string[]): void {
    for (const s of streams) {
      const w = this.waiters.get(s);
      if (!w) continue;
      this.waiters.delete(s);
      this.positions.delete(s);
      this.pending.delete(s);
      this.options.registry.remove(w);
    }
  }

  /** Called by the registry (snapshot) or on resync (null). */
  wake(stream: string, read: StreamRead | null): void {
    if (this.closed || !this.positions.has(stream)) return;
    if (read && this.deliverNow(stream, read)) return;
    // A later snapshot of a stream is newer (the registry reads a stream one at a time).
    if (this.pending.get(stream) !== null) this.pending.set(stream, read);
    void this.pump();
  }

  /**
   * The common wake-up without the pump: nothing queued or in flight, and the snapshot holds
   * everything after this stream's position, with no gap or reset. Written as the pump would
   * write it, but at once, so the position has moved when the registry looks again (otherwise
   * every wake-up cost a second, fan-out read). Anything else returns false, for the pump.
   */
  private deliverNow(stream: string, read: StreamRead): boolean {
    if (this.pumping || this.pending.size > 0 || this.settled.length > 0) return false;
    const pos = this.positions.get(stream)!;
    if (judge(pos, read) !== 'use') return false;
    const r = resolve(pos, read, this.limit);
    if ('reread' in r || r.gap || r.reset || r.messages.length === 0 || r.position.seq !== read.lastSeq) return false;
    // Over the buffer limit the pump closes the feed: leave that decision to it.
    if (this.sink.bufferedBytes() > this.options.maxBufferedBytes) return false;
    const before = this.positions;
    const batch = makeBatch(before, [r], this.budget);
    // More than one batch's bytes: the pump writes it a batch at a time.
    if (batch.deliveries[0]!.more) return false;
    this.positions = batch.positions;
    try {
      void this.sink.write(batch, before).catch(() => undefined);
    } catch (err) {
      // As in the pump: read the stream again from where the client now is, a little later.
      this.options.log.debug({ err: (err as Error).message }, 'feed write failed; retrying');
      this.pending.set(stream, null);
      this.scheduleRetry();
    }
    return true;
  }

  /** The one cleanup: unregisters every stream, stops the retry timer, releases waiting callers. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.retry);
    for (const w of this.waiters.values()) this.options.registry.remove(w);
    this.waiters.clear();
    this.pending.clear();
    this.end();
    for (const done of this.settled.splice(0)) done();
  }

  /** Fresh reads of these streams; resolves once they were applied (or the feed closed). */
  private refresh(streams: readonly string[]): Promise<void> {
    if (this.closed) return Promise.resolve();
    for (const s of streams) this.pending.set(s, null);
    const done = new Promise<void>((r) => this.settled.push(r));
    void this.pump();
    return done;
  }

  private async pump(): Promise<void> {
    if (this.pumping || this.closed) return;
    this.pumping = true;
    try {
      while (!this.closed && (this.pending.size > 0 || this.settled.length > 0)) {
        const work = this.pending;
        const settled = this.settled;
        this.pending = new Map();
        this.settled = [];
        let more: string[];
        try {
          more = await this.deliver(work);
        } catch (err) {
          this.options.log.debug({ err: (err as Error).message }, 'feed read failed; retrying');
          for (const s of work.keys()) if (this.positions.has(s)) this.pending.set(s, null);
          this.settled.push(...settled);
          this.scheduleRetry();
          return;
        }
        for (const done of settled) done();
        for (const s of more) if (this.positions.has(s)) this.pending.set(s, null);
      }
    } finally {
      this.pumping = false;
    }
  }

  /**
   * Reads, writes one batch, and returns the streams that may have more right away. Pushed
   * snapshots cost no read; the streams that need one share what the snapshots left of the
   * batch's budget (readStreams), and wait for the next batch when they left nothing.
   */
  private async deliver(work: Map<string, StreamRead | null>): Promise<string[]> {
    const used = new Map<string, Position>();
    const given: StreamDelivery[] = [];
    const fresh = new Map<string, Position>();
    for (const [stream, read] of work) {
      const pos = this.positions.get(stream);
      if (!pos) continue;
      used.set(stream, pos);
      const verdict = read ? judge(pos, read) : 'reread';
      if (verdict === 'skip') continue;
      const r = verdict === 'use' ? resolve(pos, read!, this.limit) : undefined;
      // A snapshot that does not cover the position, or stops before a message too big for it, needs a read.
      if (r && !('reread' in r) && (r.messages.length > 0 || !r.more)) given.push(r);
      else fresh.set(stream, pos);
    }
    const budget = this.budget;
    const givenCount = given.reduce((n, d) => n + d.messages.length, 0);
    const left = { limit: budget.limit - givenCount, bytes: budget.bytes - messagesBytes(given) };
    let reads: StreamDelivery[] = [];
    // A message too big for any batch goes alone, so only when the snapshots brought nothing.
    if (fresh.size > 0 && left.limit > 0 && left.bytes > 0) reads = await readStreams(this.options.store, fresh, left, givenCount === 0);
    if (this.closed) return [];
    const deliveries: StreamDelivery[] = [];
    // Streams the read did not get to (the budget ran out first) are read for the next batch.
    const more = [...fresh.keys()].filter((s) => !reads.some((d) => d.stream === s));
    for (const d of [...given, ...reads]) {
      // Unsubscribed (or re-subscribed elsewhere) while reading: this delivery no longer applies.
      if (this.positions.get(d.stream) !== used.get(d.stream)) {
        if (this.positions.has(d.stream)) more.push(d.stream);
        continue;
      }
      deliveries.push(d);
    }
    const before = this.positions;
    const batch = makeBatch(before, deliveries, budget);
    for (const d of batch.deliveries) if (d.more) more.push(d.stream);
    if (!hasNews(batch)) return more;
    // Judged on what is still unread from earlier writes, so one large batch alone never counts.
    if (this.sink.bufferedBytes() > this.options.maxBufferedBytes) {
      this.close();
      this.sink.overflow();
      return [];
    }
    this.positions = batch.positions;
    const flushed = this.sink.write(batch, before);
    // A backlog is written one batch at a time, each once the last left: a slow reader is paced, not cut.
    if (more.length > 0) await Promise.race([flushed.catch(() => undefined), this.ended]);
    return more;
  }

  private scheduleRetry(): void {
    if (this.retry || this.closed) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      void this.pump();
    }, RETRY_MS);
  }
}
