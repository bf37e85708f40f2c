/**
 * The Redis connections of the control plane (presence and disconnects), apart from the store's:
 * a command connection that fails fast (no offline queue) and a subscriber for control channels.
 * Pub/Sub is at-most-once, so whoever listens is told when the subscriber came back (`onResync`)
 * and re-reads what it missed from the keys, which are the truth.
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { StoreUnavailableError } from '../errors.js';
import type { Logger } from '../log.js';
import { connectRedis, type RedisTarget } from './redis-target.js';

export interface RedisControlOptions extends RedisTarget {
  keyPrefix: string;
  cluster: boolean;
  commandTimeoutMs: number;
  log: Logger;
}

export class RedisControl {
  readonly cmd: Redis | Cluster;
  private readonly sub: Redis | Cluster;
  private readonly handlers = new Map<string, (payload: string) => void>();
  private readonly resyncs: Array<() => void> = [];
  private readyOnce = false;

  constructor(readonly options: RedisControlOptions) {
    const common: RedisOptions = { lazyConnect: true, connectTimeout: 2000, retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2000) };
    const cmd: RedisOptions = { ...common, enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: options.commandTimeoutMs };
    const sub: RedisOptions = { ...common, enableOfflineQueue: true, maxRetriesPerRequest: null, autoResubscribe: true };
    this.cmd = options.cluster ? new Cluster([options.url], { redisOptions: cmd, enableOfflineQueue: false, lazyConnect: true }) : connectRedis(options, cmd);
    this.sub = options.cluster ? new Cluster([options.url], { redisOptions: sub, lazyConnect: true }) : connectRedis(options, sub);
    for (const client of [this.cmd, this.sub]) client.on('error', (err: Error) => options.log.warn({ err: err.message }, 'control redis connection error'));
    this.sub.on('message', (channel: string, payload: string) => this.handlers.get(channel)?.(payload));
    this.sub.on('ready', () => {
      if (!this.readyOnce) {
        this.readyOnce = true;
        return;
      }
      for (const resync of this.resyncs) resync();
    });
  }

  /** `<prefix><name>`: every control key and channel is under the store's prefix. */
  key(name: string): string {
    return this.options.keyPrefix + name;
  }

  /** Throws StoreUnavailableError when Redis cannot be reached. */
  async connect(): Promise<void> {
    try {
      await Promise.all([this.cmd.connect(), this.sub.connect()]);
    } catch (err) {
      throw new StoreUnavailableError(`cannot connect to Redis: ${(err as Error).message}`);
    }
  }

  /** Listens on a channel (`key(name)`); resolves once subscribed. */
  async subscribe(name: string, handler: (payload: string) => void): Promise<void> {
    this.handlers.set(this.key(name), handler);
    await this.sub.subscribe(this.key(name));
  }

  /** Called after the subscriber reconnected: messages published meanwhile are lost. */
  onResync(resync: () => void): void {
    this.resyncs.push(resync);
  }

  /** A command's failure as the request path sees it: StoreUnavailableError. */
  async run<T>(op: (cmd: Redis | Cluster) => Promise<T>): Promise<T> {
    try {
      return await op(this.cmd);
    } catch (err) {
      this.options.log.warn({ err: (err as Error).message }, 'control redis command failed');
      throw new StoreUnavailableError();
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.cmd.quit(), this.sub.quit()]);
    this.cmd.disconnect();
    this.sub.disconnect();
  }
}
