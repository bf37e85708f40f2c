/**
 * Redis store: appends, reads and wake-ups over the connections of redis-connections.ts (a single
 * Redis, Sentinel or a Redis Cluster with sharded pub/sub), lingering subscriptions and the tail
 * cache. Atomic operations are the Lua scripts in ./lua, one per file.
 */
import type { Redis, Cluster } from 'ioredis';
import type { Writable } from 'node:stream';
import type { Config, RetentionRule } from '../config.js';
import { newEpoch } from '../cursor.js';
import { StoreUnavailableError } from '../errors.js';
import type { Logger } from '../log.js';
import { SameLengthDeadlines } from '../deadlines.js';
import { TurnWrites } from './turn-writes.js';
import { LuaScript, type Reply } from './lua-script.js';
import { openRedisConnections, type RedisConnections } from './redis-connections.js';
import type { DurableAppends } from './redis-durability.js';
import { RedisKeys, streamSlot } from './redis-keys.js';
import { RedisSubscriptions } from './redis-subscriptions.js';
import type { ShardedSubscriber } from './sharded-subscriber.js';
import { TailCache } from './tail-cache.js';
import { WAKE_MESSAGES_MAX_BYTES, messageHead, retryKey, type AppendResult, type NewMessage, type Store, type StoreListener, type StreamRead, type WakeHint } from './store.js';

type Client = Redis | Cluster;

/** Redis replies that mean "not stored, try again" rather than a bug of ours. */
const TRANSIENT_REPLY = /^(OOM|BUSY|LOADING|READONLY|CLUSTERDOWN|TRYAGAIN|MASTERDOWN|NOREPLICAS|MISCONF|MOVED|ASK)\b/;

export interface RedisStoreOptions {
  /** A server, a cluster seed node, or (with sentinels) only credentials, database and TLS. */
  url: string;
  /** Sentinels ("host:port") to ask for the primary of `name` (not with cluster). */
  sentinels?: readonly string[];
  name?: string;
  keyPrefix: string;
  cluster: boolean;
  /** On a cluster, wake-ups by SPUBLISH/SSUBSCRIBE (default true); false: classic PUBLISH, which every node carries. */
  shardedPubSub?: boolean;
  commandTimeoutMs: number;
  /** What an append waits for before it resolves (see redis.ackDurability in config.ts). */
  ack?: { durability: 'none' | 'replicas' | 'aof'; replicas: number; timeoutMs: number };
  retention: (stream: string) => RetentionRule;
  /** Lingering subscriptions and the tail cache (redis.tailCache in config.ts); off when absent. */
  tailCache?: TailCacheConfig;
  /** Monotonic clock for the tail cache's expiry checks, ms (tests move it). */
  now?: () => number;
  log: Logger;
}

export type TailCacheConfig = Config['redis']['tailCache'];

/** Counters for GET /stats and tests: where reads were answered from. */
export type RedisStoreStats = {
  redisReads: number;
  /** Bytes of messages Redis sent to reads (the read amplification is this over the bytes answered). */
  redisReadBytes: number;
  tailHits: number;
  tailMisses: number;
  tailStreams: number;
  subscribedStreams: number;
  lingeringStreams: number;
};

export class RedisStore implements Store {
  readonly kind = 'redis' as const;
  private readonly connections: RedisConnections;
  private readonly cmd: Client;
  /** The classic subscriber (a single Redis, or a cluster with shardedPubSub false). */
  private readonly sub?: Client;
  /** Sharded pub/sub on a cluster. */
  private readonly sharded?: ShardedSubscriber;
  /** Streams confirmed again after a shard's loss, whose waiters re-read at the next turn. */
  private resyncing?: Set<string>;
  /** Appends and their WAIT/WAITAOF, when acknowledgements wait for durability. */
  private readonly acks?: DurableAppends;
  private readonly keys: RedisKeys;
  private readonly deadlines: SameLengthDeadlines;
  /** The command connection's writes of a turn, in one (lib/store/turn-writes.ts); a cluster auto-pipelines instead. */
  private readonly turnWrites?: TurnWrites;
  /** A Redis function where the server has them: it keeps INFO server's reply (lua/server-info-kept.lua). */
  private readonly appendScript = new LuaScript('append-3', 3, undefined, 'server-info', 'server-info-kept');
  /** append-3.lua's ARGV[8]: wake with SPUBLISH (1) or PUBLISH (0). */
  private readonly publishFlag: '0' | '1';
  private readonly readScript = new LuaScript('read-2', 2);
  private readonly subscriptions: RedisSubscriptions;
  /**
   * Undefined with classic pub/sub on a cluster: ioredis's cluster subscriber moves between nodes
   * without the events the cache relies on.
   */
  private readonly tail?: TailCache;
  private redisReads = 0;
  private redisReadBytes = 0;
  /** The epoch the next append passes for a log it may have to start; replaced once used. */
  private spareEpoch = newEpoch();
  private listener?: StoreListener;
  private subscriberReadyOnce = false;

  constructor(private readonly options: RedisStoreOptions) {
    this.keys = new RedisKeys(options.keyPrefix);
    this.deadlines = new SameLengthDeadlines(options.commandTimeoutMs);
    this.publishFlag = options.cluster && options.shardedPubSub !== false ? '1' : '0';
    this.connections = openRedisConnections(options, this.keys, {
      message: (channel, payload) => this.onMessage(channel, payload),
      lost: (channels) => this.onShardLost(channels),
    });
    ({ cmd: this.cmd, sub: this.sub, sharded: this.sharded, acks: this.acks } = this.connections);
    if (!this.cmd.isCluster) {
      const cmd = this.cmd as Redis & { stream?: Writable };
      this.turnWrites = new TurnWrites(() => cmd.stream);
    }
    const tail = options.tailCache;
    if (tail?.enabled && !this.sub?.isCluster) {
      this.tail = new TailCache({
        maxMessages: tail.maxMessages,
        maxBytes: tail.maxBytes,
        totalBytes: tail.totalBytes,
        retention: (stream) => {
          const rule = options.retention(stream);
          return { maxLength: rule.maxLength, ttlMs: rule.ttlSeconds * 1000 };
        },
        now: options.now,
      });
    }
    this.subscriptions = new RedisSubscriptions(
      this.connections.channels,
      { lingerMs: (tail?.lingerSeconds ?? 0) * 1000, maxLingering: tail?.maxStreams ?? 0, serial: this.sub?.isCluster ?? false, log: options.log },
      { confirmed: (stream) => this.tail?.open(stream), released: (stream) => this.tail?.close(stream) },
    );
    if (this.sub) {
      this.sub.on('message', (channel: string, payload: string) => this.onMessage(channel, payload));
      this.sub.on('ready', () => this.onSubscriberReady());
      // Wake-ups published while the connection is away are lost: nothing cached may be trusted after.
      for (const event of ['close', 'end', 'reconnecting', 'error']) this.sub.on(event, () => this.onSubscriberLost());
    }
  }

  /** Connects every client; throws StoreUnavailableError when Redis cannot be reached. */
  async connect(): Promise<void> {
    try {
      await this.connections.connect();
    } catch (err) {
      // Reached but refused (a Redis too old for a setting): nothing of ours may stay open.
      if (!(err instanceof StoreUnavailableError)) await this.close();
      throw err;
    }
  }

  async append(stream: string, messages: readonly NewMessage[]): Promise<AppendResult[]> {
    const rule = this.options.retention(stream);
    const spare = this.spareEpoch;
    const args: (string | number)[] = [
      this.keys.meta(stream), this.keys.log(stream), this.keys.ids(stream),
      rule.maxLength, rule.ttlSeconds * 1000, rule.metaTtlSeconds * 1000, spare,
      this.keys.wakeChannel(stream), messageHead(stream), WAKE_MESSAGES_MAX_BYTES, this.publishFlag,
    ];
    for (const m of messages) args.push(retryKey(m) ?? '', m.tail);
    let reply: Reply;
    let on: Redis | undefined;
    try {
      if (this.acks) {
        const acks = this.acks;
        // Where the WAIT that confirms it can follow it: on a cluster, the owner of the stream's slot.
        ({ reply, on } = await this.call(() => acks.run(streamSlot(stream), (client, asking) => (asking ? this.appendScript.runAsking(client, args) : this.appendScript.run(client, args)))));
      } else {
        reply = await this.call(() => this.appendScript.run(this.cmd, args));
      }
    } catch (err) {
      // It may have run and started a log with the spare epoch: never offer that one again.
      this.spareEpoch = newEpoch();
      throw err;
    }
    // The spare epoch started a log (a new stream, or the first write after a Redis restart): the
    // next log needs another. Drawing one per append cost a getrandom call for nothing.
    if (reply[0] === spare) this.spareEpoch = newEpoch();
    let newest = 0;
    for (let i = 1; i < reply.length; i += 2) newest = Math.max(newest, Number(reply[i]));
    this.tail?.appended(stream, String(reply[0]), newest);
    // Stored and visible, but not confirmed durable: the sender must treat it as indeterminate.
    if (on && !(await this.call(() => this.acks!.confirm(on)))) {
      throw new StoreUnavailableError(`stored but not confirmed (${this.options.ack!.durability}); retry with the same id`);
    }
    return messages.map((m, i) => ({
      stream,
      seq: Number(reply[1 + 2 * i]),
      id: m.id,
      duplicate: Number(reply[2 + 2 * i]) === 1,
    }));
  }

  async read(stream: string, after: number, limit: number, maxBytes = 0): Promise<StreamRead> {
    const cached = this.tail?.read(stream, after, limit, maxBytes);
    if (cached) return cached;
    // Taken before sending: a wake-up seen from here to the reply may be newer than the read.
    const ticket = this.tail?.ticket(stream);
    this.redisReads++;
    const reply = await this.call(() => this.readScript.run(this.cmd, [this.keys.meta(stream), this.keys.log(stream), after, limit, maxBytes]));
    const epoch = String(reply[0]);
    const lastSeq = Number(reply[1]);
    const firstSeq = Number(reply[2]);
    const nextBytes = Number(reply[4]);
    this.redisReadBytes += Number(reply[5]);
    const messages = reply.slice(6) as string[];
    const read: StreamRead = { stream, epoch, lastSeq, firstSeq, after: epoch === '' ? after : Math.max(after, firstSeq - 1), messages };
    if (nextBytes > 0) read.nextBytes = nextBytes;
    if (ticket && this.readsWhereSubscribed(stream)) this.tail!.seed(stream, ticket, read, Number(reply[3]));
    return read;
  }

  /**
   * On a cluster, whether reads of the stream go to the master its subscription is confirmed on. A
   * MOVED reply re-routes reads before the slot map refresh moves the subscription: a read from the
   * new owner must not seed a cache that still hears the old one.
   */
  private readsWhereSubscribed(stream: string): boolean {
    if (!this.sharded) return true;
    const subscribed = this.sharded.confirmedAt(this.keys.wakeChannel(stream));
    const owner = (this.cmd as Cluster).slots[streamSlot(stream)]?.[0];
    if (subscribed && owner && subscribed !== owner) this.sharded.checkOwners();
    return subscribed !== undefined && subscribed === owner;
  }

  /** The head the tail cache holds for a subscribed stream, when it could answer a read from memory. */
  knownHead(stream: string): { epoch: string; lastSeq: number } | undefined {
    return this.tail?.head(stream);
  }

  /** Where reads were answered from, and the subscriptions held. */
  stats(): RedisStoreStats {
    return {
      redisReads: this.redisReads,
      redisReadBytes: this.redisReadBytes,
      tailHits: this.tail?.hits ?? 0,
      tailMisses: this.tail?.misses ?? 0,
      tailStreams: this.tail?.size ?? 0,
      subscribedStreams: this.subscriptions.count,
      lingeringStreams: this.subscriptions.lingeringCount,
    };
  }

  subscribe(stream: string): Promise<void> | undefined {
    return this.subscriptions.subscribe(stream);
  }

  /** Keeps the channel subscribed for redis.tailCache.lingerSeconds, then unsubscribes. */
  unsubscribe(stream: string): Promise<void> {
    return this.subscriptions.unsubscribe(stream);
  }

  setListener(listener: StoreListener): void {
    this.listener = listener;
  }

  async ping(): Promise<void> {
    await this.call(() => this.cmd.ping());
  }

  async close(): Promise<void> {
    this.subscriptions.close();
    this.tail?.clear();
    await this.connections.close();
    // Every command in flight was refused as the connections closed: none is left to time out.
    this.deadlines.stop();
  }

  /**
   * Runs an operation within commandTimeoutMs, counted from the call. ioredis's commandTimeout is
   * per command and starts only when the command reaches the connection: an operation of two
   * commands (EVALSHA then EVAL after NOSCRIPT, an append then its WAIT) or one queued behind a
   * cluster auto-pipeline could take twice as long while Redis is frozen. A command that misses
   * its deadline may still run later.
   */
  private call<T>(op: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const deadline = this.deadlines.start(() => reject(this.failed(new Error('Command timed out'))));
      const settle = (ok: boolean, value: unknown) => {
        // Past its deadline the caller has its answer already: a late reply changes nothing.
        if (!this.deadlines.done(deadline)) return;
        if (ok) resolve(value as T);
        else reject(this.failed(value));
      };
      let reply: Promise<T>;
      this.turnWrites?.hold();
      try {
        reply = op();
      } catch (err) {
        return settle(false, err);
      }
      reply.then((value) => settle(true, value), (err: unknown) => settle(false, err));
    });
  }

  /** What a failed command rejects with: Redis's own error for a bad command, else StoreUnavailableError. */
  private failed(err: unknown): Error {
    const message = (err as Error)?.message ?? String(err);
    if (err instanceof Error && err.name === 'ReplyError' && !TRANSIENT_REPLY.test(message)) return err;
    this.options.log.warn({ err: message }, 'redis command failed');
    // Redis may be away or partitioned from us: stop answering from memory until it answers again.
    this.tail?.forget();
    return new StoreUnavailableError();
  }

  private onMessage(channel: string, payload: string): void {
    const stream = this.keys.streamOfChannel(channel);
    const nl = payload.indexOf('\n');
    const head = nl < 0 ? payload : payload.slice(0, nl);
    const sep = head.lastIndexOf(':');
    if (!stream || sep < 0) return;
    const hint: WakeHint = { epoch: head.slice(0, sep), lastSeq: Number(head.slice(sep + 1)) };
    if (nl >= 0) {
      const messages = payload.slice(nl + 1).split('\n');
      if (messages.length <= hint.lastSeq) hint.messages = messages;
    }
    // The cache first, so reads the listener starts see this head.
    this.tail?.wake(stream, hint);
    if (this.subscriptions.isWanted(stream)) this.listener?.wake(stream, hint);
  }

  private onSubscriberLost(): void {
    this.subscriptions.lost();
    this.tail?.clear();
  }

  /**
   * A cluster shard's subscriptions were lost (its connection dropped, its slots moved): nothing
   * cached about those streams may be trusted. Subscribe them where their slots are now, then have
   * their waiters re-read (batched per turn of the event loop).
   */
  private onShardLost(channels: string[]): void {
    const streams: string[] = [];
    for (const channel of channels) {
      const stream = this.keys.streamOfChannel(channel);
      if (stream === undefined) continue;
      this.tail?.close(stream);
      streams.push(stream);
    }
    this.subscriptions.resubscribeSome(streams).then((again) => {
      if (!again.length) return;
      if (!this.resyncing) {
        this.resyncing = new Set();
        setImmediate(() => {
          const batch = [...this.resyncing!];
          this.resyncing = undefined;
          this.listener?.resync(batch);
        });
      }
      for (const s of again) this.resyncing.add(s);
    }, (err: Error) => this.options.log.warn({ err: err.message }, 're-subscribe failed'));
  }

  /**
   * Pub/Sub is at-most-once: wake-ups published while the subscriber was away are gone. After a
   * reconnect, confirm the subscriptions, then have every waiter re-read the log.
   */
  private onSubscriberReady(): void {
    if (!this.subscriberReadyOnce) {
      this.subscriberReadyOnce = true;
      return;
    }
    this.subscriptions.resubscribe().then(
      () => this.listener?.resync(),
      (err: Error) => this.options.log.warn({ err: err.message }, 're-subscribe failed'),
    );
  }
}
