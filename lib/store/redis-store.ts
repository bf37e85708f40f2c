/**
 * Redis store: one command connection (fails fast: no offline queue, one retry) for the request
 * path, and wake-ups on a subscriber connection of their own (on a Redis Cluster: sharded
 * pub/sub, one subscriber connection per master that serves a subscribed stream). Atomic
 * operations are the Lua scripts in ./lua, one per file.
 */
import { Redis, Cluster, type RedisOptions } from 'ioredis';
import type { Config, RetentionRule } from '../config.js';
import { newEpoch } from '../cursor.js';
import { StoreUnavailableError } from '../errors.js';
import type { Logger } from '../log.js';
import { CommandDeadlines } from './command-deadlines.js';
import { LuaScript, type Reply } from './lua-script.js';
import { ClusterDurableAppends, SingleDurableAppends, type DurableAppends } from './redis-durability.js';
import { RedisKeys, streamSlot } from './redis-keys.js';
import { RedisSubscriptions, type WakeChannels } from './redis-subscriptions.js';
import { ShardedSubscriber } from './sharded-subscriber.js';
import type { NodeAddress } from './shard-connection.js';
import type { SlotOwners } from './redis-durability.js';
import { connectRedis, describeTarget } from './redis-target.js';
import { TailCache } from './tail-cache.js';
import { WAKE_MESSAGES_MAX_BYTES, idempotencyKey, messageHead, type AppendResult, type NewMessage, type Store, type StoreListener, type StreamRead, type WakeHint } from './store.js';

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
  private readonly deadlines: CommandDeadlines;
  private readonly appendScript = new LuaScript('append-3', 3);
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
    this.deadlines = new CommandDeadlines(options.commandTimeoutMs);
    const common: RedisOptions = {
      lazyConnect: true,
      connectTimeout: 2000,
      retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
    };
    // The request path must fail fast during an outage: no offline queue, a bounded wait.
    const commandOptions: RedisOptions = {
      ...common,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: options.commandTimeoutMs,
      // Off: each request sends one command per turn of the event loop, so an auto-pipeline held
      // one command and cost a Pipeline, its promises and its queue on every call (a Redis /send
      // ran 16% fewer instructions without it; docs/PERFORMANCE.md). Commands written while the
      // socket is still busy with an earlier write leave together in one writev anyway.
      enableAutoPipelining: false,
    };
    // The subscriber may wait for Redis to come back; it re-subscribes itself on reconnect.
    const subscriberOptions: RedisOptions = { ...common, enableOfflineQueue: true, maxRetriesPerRequest: null, autoResubscribe: true };
    const sharded = options.cluster && options.shardedPubSub !== false;
    this.publishFlag = sharded ? '1' : '0';
    if (options.cluster) {
      // Auto-pipelining stays on here: several reads that miss the tail cache can share a turn of
      // the event loop, and turning it off was measured on a single Redis only. The slot map is
      // refreshed every 5 s: a sharded subscription on a node that lost its slots without telling
      // us (a partition) is moved within that.
      this.cmd = new Cluster([options.url], {
        redisOptions: commandOptions, enableOfflineQueue: false, lazyConnect: true, enableAutoPipelining: true,
        slotsRefreshInterval: sharded ? 5000 : undefined,
      });
      if (sharded) this.sharded = this.shardedSubscriber(this.cmd as Cluster);
      else this.sub = new Cluster([options.url], { redisOptions: subscriberOptions, lazyConnect: true });
    } else {
      this.cmd = connectRedis(options, commandOptions);
      this.sub = connectRedis(options, subscriberOptions);
    }
    const ack = options.ack;
    if (ack && ack.durability !== 'none') {
      const acks = { ...ack, durability: ack.durability };
      this.acks = options.cluster
        ? new ClusterDurableAppends(this.slotOwners(this.cmd as Cluster), (node) => {
          const { host, port, tls, username, password } = this.nodeAddress(node);
          return { ...commandOptions, host, port, username, password, tls: tls ? { servername: host } : undefined };
        }, acks, options.log)
        : new SingleDurableAppends(describeTarget(options), connectRedis(options, { ...commandOptions, enableAutoPipelining: false }), acks, options.log);
    }
    for (const client of [this.cmd, ...(this.sub ? [this.sub] : []), ...(options.cluster ? [] : this.acks?.clients ?? [])]) {
      // An 'error' event without a listener would crash the process; reconnects are automatic.
      client.on('error', (err: Error) => options.log.warn({ err: err.message }, 'redis connection error'));
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
      this.wakeChannels(),
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

  /** Sharded pub/sub on the command client's slot map, with the seed URL's credentials and TLS for every node. */
  private shardedSubscriber(cluster: Cluster): ShardedSubscriber {
    const owners = this.slotOwners(cluster);
    const sharded = new ShardedSubscriber(
      {
        topology: owners,
        address: (node) => this.nodeAddress(node),
        connectTimeoutMs: 2000,
        log: this.options.log,
      },
      {
        message: (channel, payload) => this.onMessage(channel, payload),
        lost: (channels) => this.onShardLost(channels),
      },
    );
    cluster.on('refresh', () => sharded.checkOwners());
    return sharded;
  }

  /** The command client's slot map. */
  private slotOwners(cluster: Cluster): SlotOwners {
    return {
      owner: (slot) => cluster.slots[slot]?.[0],
      masters: () => [...new Set(cluster.slots.map((nodes) => nodes[0]!))],
      refresh: () => new Promise((resolve) => cluster.refreshSlotsCache(() => resolve())),
    };
  }

  /** A cluster node ("host:port" from the slot map), with the seed URL's credentials and TLS. */
  private nodeAddress(node: string): NodeAddress {
    const seed = new URL(this.options.url);
    const at = node.lastIndexOf(':');
    return {
      host: node.slice(0, at),
      port: Number(node.slice(at + 1)),
      tls: seed.protocol === 'rediss:',
      username: decodeURIComponent(seed.username) || undefined,
      password: decodeURIComponent(seed.password) || undefined,
    };
  }

  /** What RedisSubscriptions subscribes through: the classic subscriber, or the cluster's shards. */
  private wakeChannels(): WakeChannels {
    const { keys, sharded, sub } = this;
    if (sharded) {
      return {
        subscribe: (stream) => sharded.subscribe(keys.wakeChannel(stream), streamSlot(stream)),
        unsubscribe: (stream) => sharded.unsubscribe(keys.wakeChannel(stream)),
        subscribeAll: (streams) => Promise.all(streams.map((s) => sharded.subscribe(keys.wakeChannel(s), streamSlot(s)))),
      };
    }
    return {
      subscribe: (stream) => sub!.subscribe(keys.wakeChannel(stream)),
      unsubscribe: (stream) => sub!.unsubscribe(keys.wakeChannel(stream)),
      subscribeAll: (streams) => sub!.subscribe(...streams.map((s) => keys.wakeChannel(s))),
    };
  }

  /** Connects every client; throws StoreUnavailableError when Redis cannot be reached. */
  async connect(): Promise<void> {
    try {
      await Promise.all([this.cmd.connect(), this.sub?.connect(), this.acks?.connect()]);
    } catch (err) {
      throw new StoreUnavailableError(`cannot connect to Redis: ${(err as Error).message}`);
    }
    try {
      if (this.sharded) await this.checkShardedPubSub();
      await this.acks?.checkSupport();
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  /** Sharded pub/sub needs Redis >= 7.0; refuse to start rather than retry SSUBSCRIBE for ever. */
  private async checkShardedPubSub(): Promise<void> {
    const info = String(await this.cmd.info('server'));
    const version = /^redis_version:(.*)$/m.exec(info)?.[1]?.trim() ?? '';
    if (Number(version.split('.')[0]) < 7) {
      throw new Error(`redis.cluster wakes streams by sharded pub/sub (SPUBLISH, Redis >= 7.0); ${this.options.url} runs Redis ${version}. Set redis.shardedPubSub false, or upgrade Redis`);
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
    for (const m of messages) args.push(idempotencyKey(m.sender, m.id), m.tail);
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
    this.sharded?.close();
    this.tail?.clear();
    await Promise.allSettled([this.cmd.quit(), this.sub?.quit(), this.acks?.close()]);
    this.cmd.disconnect();
    this.sub?.disconnect();
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
