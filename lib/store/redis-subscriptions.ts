/**
 * The Redis store's wake-up subscriptions, one per stream, on its subscriber connection(s). A
 * stream unsubscribed by its last waiter lingers (stays subscribed) for a while, so a client that
 * polls again soon costs no SUBSCRIBE/UNSUBSCRIBE and the tail cache keeps following the stream.
 * Tells the owner when a subscription is confirmed on a connection that is still up and when one
 * ends; the owner tells it when confirmations were lost (all of them: the one classic connection
 * dropped; some: a cluster shard's connection dropped or its slots moved).
 */
import type { Logger } from '../log.js';

export interface SubscriptionOptions {
  /** How long an unsubscribed stream stays subscribed, ms (0: unsubscribe at once). */
  lingerMs: number;
  /** Lingering streams at most; the oldest is unsubscribed first. */
  maxLingering: number;
  /** Send SUBSCRIBE/UNSUBSCRIBE one at a time (ioredis Cluster needs it). */
  serial: boolean;
  log: Logger;
}

/** Where a stream's wake-ups are subscribed: the classic subscriber connection, or the cluster's shards. */
export interface WakeChannels {
  /** Resolves once the subscription is answered on a connection that is up. */
  subscribe(stream: string): Promise<unknown>;
  unsubscribe(stream: string): Promise<unknown>;
  /** Subscribes every stream again after a reconnect; resolves when all are answered. */
  subscribeAll(streams: string[]): Promise<unknown>;
}

export interface SubscriptionEvents {
  /** SUBSCRIBE answered on the connection that is still up: every later wake-up will be seen. */
  confirmed(stream: string): void;
  /** The stream is being unsubscribed. */
  released(stream: string): void;
}

interface Subscription {
  ready: Promise<void>;
  /** Bumped when this stream's confirmation was lost: an answer to an older SUBSCRIBE is void. */
  generation: number;
  /** `ready` has resolved: wake-ups flow (as far as any confirmation can say; see lost()). */
  settled: boolean;
  linger?: NodeJS.Timeout;
}

export class RedisSubscriptions {
  private readonly subs = new Map<string, Subscription>();
  /** Lingering streams, oldest first (Map keeps insertion order). */
  private readonly lingering = new Map<string, Subscription>();
  /** Bumped whenever the subscriber connection goes away: a confirmation from an older one is void. */
  private generation = 0;
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly channels: WakeChannels,
    private readonly options: SubscriptionOptions,
    private readonly events: SubscriptionEvents,
  ) {}

  /** Streams subscribed on Redis, lingering ones included. */
  get count(): number {
    return this.subs.size;
  }

  get lingeringCount(): number {
    return this.lingering.size;
  }

  /** Subscribed and wanted: a lingering stream's wake-ups feed the cache but wake no listener. */
  isWanted(stream: string): boolean {
    const s = this.subs.get(stream);
    return s !== undefined && !s.linger;
  }

  /**
   * Resolves once wake-ups flow; undefined when they already do (a lingering or shared stream
   * whose SUBSCRIBE was answered). A failure forgets the stream.
   */
  subscribe(stream: string): Promise<void> | undefined {
    const known = this.subs.get(stream);
    if (known) {
      this.stopLingering(stream, known);
      return known.settled ? undefined : known.ready;
    }
    const generation = this.generation;
    const entry: Subscription = { ready: Promise.resolve(), settled: false, generation: 0 };
    entry.ready = this.send(() => this.channels.subscribe(stream)).then(
      () => {
        entry.settled = true;
        if (this.subs.get(stream) === entry && generation === this.generation && entry.generation === 0) this.events.confirmed(stream);
      },
      (err: Error) => {
        if (this.subs.get(stream) === entry) this.subs.delete(stream);
        throw err;
      },
    );
    this.subs.set(stream, entry);
    return entry.ready;
  }

  /** Lingers, then unsubscribes (at once when lingering is off or the store is closing). */
  async unsubscribe(stream: string): Promise<void> {
    const entry = this.subs.get(stream);
    if (!entry || entry.linger) return;
    if (this.closed || this.options.lingerMs <= 0 || this.options.maxLingering <= 0) return this.release(stream);
    entry.linger = setTimeout(() => void this.release(stream), this.options.lingerMs);
    // A lingering subscription alone must not keep the process alive.
    entry.linger.unref();
    this.lingering.set(stream, entry);
    for (const [oldest] of this.lingering) {
      if (this.lingering.size <= this.options.maxLingering) break;
      void this.release(oldest);
    }
  }

  /** The subscriber connection closed: confirmations of the old connection no longer hold. */
  lost(): void {
    this.generation++;
  }

  /**
   * The subscriber connection is back: SUBSCRIBE every stream again (ioredis re-subscribes on its
   * own, but only this reply says when it is done) and confirm each. Rejects when that fails.
   */
  async resubscribe(): Promise<void> {
    const generation = this.generation;
    const entries = [...this.subs];
    if (entries.length) await this.channels.subscribeAll(entries.map(([stream]) => stream));
    if (generation !== this.generation) return;
    for (const [stream, entry] of entries) if (this.subs.get(stream) === entry) this.events.confirmed(stream);
  }

  /**
   * These streams' subscriptions were lost (a cluster shard's connection, a moved slot): subscribe
   * each again and confirm it. Resolves with the streams confirmed again (still subscribed here).
   */
  async resubscribeSome(streams: readonly string[]): Promise<string[]> {
    const again = await Promise.all(streams.map(async (stream) => {
      const entry = this.subs.get(stream);
      if (!entry) return undefined;
      const generation = ++entry.generation;
      try {
        await this.channels.subscribe(stream);
      } catch {
        return undefined;
      }
      if (this.subs.get(stream) !== entry || entry.generation !== generation) return undefined;
      this.events.confirmed(stream);
      return stream;
    }));
    return again.filter((s): s is string => s !== undefined);
  }

  /** Stops every linger timer; later unsubscribes are local only. */
  close(): void {
    this.closed = true;
    for (const entry of this.lingering.values()) clearTimeout(entry.linger);
    this.lingering.clear();
    this.subs.clear();
  }

  private stopLingering(stream: string, entry: Subscription): void {
    if (!entry.linger) return;
    clearTimeout(entry.linger);
    entry.linger = undefined;
    this.lingering.delete(stream);
  }

  private async release(stream: string): Promise<void> {
    const entry = this.subs.get(stream);
    if (!entry) return;
    this.stopLingering(stream, entry);
    this.subs.delete(stream);
    this.events.released(stream);
    if (this.closed) return;
    await this.send(() => this.channels.unsubscribe(stream)).catch((err: Error) => this.options.log.debug({ err: err.message }, 'unsubscribe failed'));
  }

  /**
   * ioredis Cluster sends concurrent SUBSCRIBEs racing its subscriber connection's set-up, and
   * all but the first fail with "Connection in subscriber mode": one at a time there. Going
   * through one chain also keeps an UNSUBSCRIBE and a later SUBSCRIBE of a stream in order.
   */
  private send<T>(op: () => Promise<T>): Promise<T> {
    if (!this.options.serial) return op();
    const done = this.chain.then(op);
    this.chain = done.catch(() => undefined);
    return done;
  }
}
