/**
 * Appends that wait for durability (redis.ackDurability "replicas" or "aof", single Redis only).
 * They run on a connection of their own, because WAIT blocks the connection it runs on, and share
 * their confirmations (group commit): one WAIT or WAITAOF at a time, covering every append
 * answered before it was sent.
 */
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from '../log.js';

export interface AckOptions {
  durability: 'replicas' | 'aof';
  replicas: number;
  timeoutMs: number;
}

export class DurableAcks {
  /** Appends go over this connection, so that a WAIT on it covers them. */
  readonly client: Redis;
  /** Appends answered but not yet covered by a WAIT share the next one. */
  private nextConfirm?: Promise<boolean>;
  private lastConfirm: Promise<unknown> = Promise.resolve();

  constructor(private readonly url: string, options: RedisOptions, private readonly ack: AckOptions, private readonly log: Logger) {
    this.client = new Redis(url, { ...options, enableAutoPipelining: false });
  }

  /** Refuses an ackDurability this Redis cannot honour, with a message naming the setting. */
  async checkSupport(): Promise<void> {
    const info = await this.client.info();
    const field = (name: string) => new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim() ?? '';
    const version = field('redis_version');
    const [major = 0, minor = 0] = version.split('.').map(Number);
    if (this.ack.durability === 'aof') {
      if (major < 7 || (major === 7 && minor < 2)) {
        throw new Error(`redis.ackDurability "aof" needs WAITAOF (Redis >= 7.2); ${this.url} runs Redis ${version}. Use "replicas" or "none", or upgrade Redis`);
      }
      if (field('aof_enabled') !== '1') throw new Error(`redis.ackDurability "aof" needs appendonly yes on ${this.url}`);
    } else if (Number(field('connected_slaves')) < this.ack.replicas) {
      this.log.warn({ replicas: Number(field('connected_slaves')), needed: this.ack.replicas }, 'fewer replicas than redis.ackReplicas: sends answer 503 until they connect');
    }
  }

  /** Whether every append answered so far on `client` is durable as configured. */
  confirm(): Promise<boolean> {
    if (!this.nextConfirm) {
      const sent = this.lastConfirm.then(() => {
        this.nextConfirm = undefined;
        return this.waitForDurability();
      });
      this.lastConfirm = sent.catch(() => undefined);
      this.nextConfirm = sent;
    }
    return this.nextConfirm;
  }

  private async waitForDurability(): Promise<boolean> {
    const { durability, replicas, timeoutMs } = this.ack;
    if (durability === 'replicas') return Number(await this.client.call('WAIT', replicas, timeoutMs)) >= replicas;
    const [local] = (await this.client.call('WAITAOF', 1, 0, timeoutMs)) as number[];
    return Number(local) >= 1;
  }
}
