/**
 * The Redis store's connections, by deployment: one command client (fails fast: no offline queue,
 * one retry) for the request path; wake-ups on a subscriber of their own (a single Redis or
 * Sentinel: one classic subscriber connection; a Redis Cluster: sharded pub/sub, one connection
 * per master that serves a subscribed stream, or ioredis's classic cluster subscriber with
 * redis.shardedPubSub false); and, with redis.ackDurability, the durable appends' connections.
 * The store owns the returned clients and wires their events; close() ends them all.
 */
import { Redis, Cluster, type RedisOptions } from 'ioredis';
import { StoreUnavailableError } from '../errors.js';
import { ClusterDurableAppends, SingleDurableAppends, type DurableAppends, type SlotOwners } from './redis-durability.js';
import { streamSlot, type RedisKeys } from './redis-keys.js';
import type { RedisStoreOptions } from './redis-store.js';
import type { WakeChannels } from './redis-subscriptions.js';
import { connectRedis, describeTarget, withRedisScheme } from './redis-target.js';
import { ShardedSubscriber, type ShardedSubscriberEvents } from './sharded-subscriber.js';
import type { NodeAddress } from './shard-connection.js';

export interface RedisConnections {
  cmd: Redis | Cluster;
  /** The classic subscriber (a single Redis, Sentinel, or a cluster with shardedPubSub false). */
  sub?: Redis | Cluster;
  /** Sharded pub/sub on a cluster. */
  sharded?: ShardedSubscriber;
  /** Appends and their WAIT/WAITAOF, when acknowledgements wait for durability. */
  acks?: DurableAppends;
  /** What the store's subscriptions subscribe through. */
  channels: WakeChannels;
  /** Connects every client and checks the servers; throws StoreUnavailableError when Redis cannot be reached. */
  connect(): Promise<void>;
  close(): Promise<void>;
}

/** Builds (without connecting) the connections the options ask for; `shardEvents` hears the sharded subscriber. */
export function openRedisConnections(options: RedisStoreOptions, keys: RedisKeys, shardEvents: ShardedSubscriberEvents): RedisConnections {
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
  const shardedPubSub = options.cluster && options.shardedPubSub !== false;
  let cmd: Redis | Cluster;
  let sub: Redis | Cluster | undefined;
  let sharded: ShardedSubscriber | undefined;
  let acks: DurableAppends | undefined;
  if (options.cluster) {
    // Auto-pipelining stays on here: several reads that miss the tail cache can share a turn of
    // the event loop, and turning it off was measured on a single Redis only. The slot map is
    // refreshed every 5 s: a sharded subscription on a node that lost its slots without telling
    // us (a partition) is moved within that.
    const cluster = new Cluster([options.url], {
      redisOptions: commandOptions, enableOfflineQueue: false, lazyConnect: true, enableAutoPipelining: true,
      slotsRefreshInterval: shardedPubSub ? 5000 : undefined,
    });
    cmd = cluster;
    if (shardedPubSub) {
      sharded = new ShardedSubscriber({ topology: slotOwners(cluster), address: (node) => nodeAddress(options.url, node), connectTimeoutMs: 2000, log: options.log }, shardEvents);
      cluster.on('refresh', () => sharded!.checkOwners());
    } else {
      sub = new Cluster([options.url], { redisOptions: subscriberOptions, lazyConnect: true });
    }
  } else {
    cmd = connectRedis(options, commandOptions);
    sub = connectRedis(options, subscriberOptions);
  }
  const ack = options.ack;
  if (ack && ack.durability !== 'none') {
    const settings = { ...ack, durability: ack.durability };
    acks = options.cluster
      ? new ClusterDurableAppends(slotOwners(cmd as Cluster), (node) => {
        const { host, port, tls, username, password } = nodeAddress(options.url, node);
        return { ...commandOptions, host, port, username, password, tls: tls ? { servername: host } : undefined };
      }, settings, options.log)
      : new SingleDurableAppends(describeTarget(options), connectRedis(options, { ...commandOptions, enableAutoPipelining: false }), settings, options.log);
  }
  // The cluster's durable connections have listeners of their own (they come and go with masters).
  for (const client of [cmd, ...(sub ? [sub] : []), ...(options.cluster ? [] : acks?.clients ?? [])]) {
    // An 'error' event without a listener would crash the process; reconnects are automatic.
    client.on('error', (err: Error) => options.log.warn({ err: err.message }, 'redis connection error'));
  }
  return {
    cmd,
    sub,
    sharded,
    acks,
    channels: wakeChannels(keys, sharded, sub),
    async connect() {
      try {
        await Promise.all([cmd.connect(), sub?.connect(), acks?.connect()]);
      } catch (err) {
        throw new StoreUnavailableError(`cannot connect to Redis: ${(err as Error).message}`);
      }
      if (sharded) await checkShardedPubSub(cmd, options.url);
      await acks?.checkSupport();
    },
    async close() {
      sharded?.close();
      await Promise.allSettled([cmd.quit(), sub?.quit(), acks?.close()]);
      cmd.disconnect();
      sub?.disconnect();
    },
  };
}

/** Sharded pub/sub needs Redis >= 7.0; refuse to start rather than retry SSUBSCRIBE for ever. */
async function checkShardedPubSub(cmd: Redis | Cluster, url: string): Promise<void> {
  const info = String(await cmd.info('server'));
  const version = /^redis_version:(.*)$/m.exec(info)?.[1]?.trim() ?? '';
  if (Number(version.split('.')[0]) < 7) {
    throw new Error(`redis.cluster wakes streams by sharded pub/sub (SPUBLISH, Redis >= 7.0); ${url} runs Redis ${version}. Set redis.shardedPubSub false, or upgrade Redis`);
  }
}

/** The command client's slot map. */
function slotOwners(cluster: Cluster): SlotOwners {
  return {
    owner: (slot) => cluster.slots[slot]?.[0],
    masters: () => [...new Set(cluster.slots.map((nodes) => nodes[0]!))],
    refresh: () => new Promise((resolve) => cluster.refreshSlotsCache(() => resolve())),
  };
}

/** A cluster node ("host:port" from the slot map), with the seed URL's credentials and TLS. */
function nodeAddress(seedUrl: string, node: string): NodeAddress {
  const seed = new URL(withRedisScheme(seedUrl));
  const at = node.lastIndexOf(':');
  return {
    host: node.slice(0, at),
    port: Number(node.slice(at + 1)),
    tls: seed.protocol === 'rediss:',
    username: decodeURIComponent(seed.username) || undefined,
    password: decodeURIComponent(seed.password) || undefined,
  };
}

/** What the subscriptions subscribe through: the classic subscriber, or the cluster's shards. */
function wakeChannels(keys: RedisKeys, sharded: ShardedSubscriber | undefined, sub: Redis | Cluster | undefined): WakeChannels {
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
