/**
 * Request rate limits (rate-limiter-flexible): messages sent per sender (which also bounds how
 * fast a sender can create streams) and new polls per client IP.
 * With Redis as the store the counters live in Redis, so every gateway process shares them; each
 * Redis limiter is insured by an in-process one, so while Redis is away the limits still hold per
 * process (never a 500, never unlimited).
 */
import { Cluster, Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Principal } from '../auth.js';
import { BadRequestError, RateLimitedError } from '../errors.js';
import type { Logger } from '../log.js';
import { connectRedis, type RedisTarget } from '../store/redis-target.js';

export interface RateLimitSettings {
  /** Messages appended per second via /send per client-token subject (a fan-out to n streams counts n); 0 disables. */
  sendPerSecond: number;
  /** The same per API key; 0 disables. */
  apiKeySendPerSecond: number;
  /** New polls per second per client IP; 0 disables. */
  pollsPerIpPerSecond: number;
}

export interface RateLimitRedis extends RedisTarget {
  keyPrefix: string;
  cluster: boolean;
  commandTimeoutMs: number;
}

type Limiter = RateLimiterAbstract | undefined;

/** Longest wait for a shared counter before the in-process one decides (ms). */
const LIMITER_TIMEOUT_MS = 250;

export class RateLimits {
  private readonly clientSend: Limiter;
  private readonly keySend: Limiter;
  private readonly polls: Limiter;
  private readonly client?: Redis | Cluster;

  /** `redis` undefined keeps the counters in this process (the memory store's single-node mode). */
  constructor(settings: RateLimitSettings, private readonly log: Logger, redis?: RateLimitRedis) {
    if (redis && (settings.sendPerSecond || settings.apiKeySendPerSecond || settings.pollsPerIpPerSecond)) {
      // A dedicated connection: the store's client stays private to the store, and a limiter call
      // that cannot reach Redis fails at once (no offline queue) and falls back to its insurance.
      // A short timeout of its own: a frozen Redis must not add a whole commandTimeoutMs to every
      // request before the store's own call; a counter that times out falls back to its insurance.
      const commandTimeout = Math.min(LIMITER_TIMEOUT_MS, redis.commandTimeoutMs);
      const options = { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout, connectTimeout: 2000 };
      this.client = redis.cluster
        ? new Cluster([redis.url], { redisOptions: options, enableOfflineQueue: false, lazyConnect: true })
        : connectRedis(redis, options);
      this.client.on('error', (err: Error) => log.warn({ err: err.message }, 'rate-limit redis connection error'));
    }
    const make = (name: string, points: number): Limiter => {
      if (points <= 0) return undefined;
      const insurance = new RateLimiterMemory({ keyPrefix: name, points, duration: 1 });
      if (!this.client || !redis) return insurance;
      return new RateLimiterRedis({
        storeClient: this.client,
        keyPrefix: `${redis.keyPrefix}rl:${name}`,
        points,
        duration: 1,
        rejectIfRedisNotReady: true,
        insuranceLimiter: insurance,
      });
    };
    this.clientSend = make('send', settings.sendPerSecond);
    this.keySend = make('send-key', settings.apiKeySendPerSecond);
    this.polls = make('poll-ip', settings.pollsPerIpPerSecond);
  }

  /** Connects the shared counters; when Redis cannot be reached the in-process counters apply. */
  async connect(): Promise<void> {
    await this.client?.connect().catch((err: Error) => this.log.warn({ err: err.message }, 'rate limits fall back to per-process counters'));
  }

  /**
   * Counts `appends` (messages x streams) against this sender's /send rate. Rejects with
   * RateLimitedError (429 + Retry-After) over the rate; throws BadRequestError for a request that
   * appends more than a whole second allows (it could never pass). Undefined when this kind of
   * sender is not limited (its setting is 0): a send costs no promise.
   */
  checkSend(principal: Principal, appends: number): Promise<void> | undefined {
    const limiter = principal.kind === 'server' ? this.keySend : this.clientSend;
    if (!limiter) return undefined;
    if (appends > limiter.points) {
      throw new BadRequestError(`this request appends ${appends} messages (messages x streams); this sender may append at most ${limiter.points} per second`);
    }
    return this.consume(limiter, principal.subject, 'too many messages sent, slow down', appends);
  }

  /**
   * Rejects with RateLimitedError when this client IP opened polls faster than allowed.
   * Undefined when polls are not limited (pollsPerIpPerSecond 0): a poll costs no promise.
   */
  checkPoll(ip: string): Promise<void> | undefined {
    return this.polls ? this.consume(this.polls, ip, 'too many polls from this address, slow down') : undefined;
  }

  async close(): Promise<void> {
    if (!this.client) return;
    await this.client.quit().catch(() => undefined);
    this.client.disconnect();
  }

  private async consume(limiter: Limiter, key: string, message: string, points = 1): Promise<void> {
    if (!limiter) return;
    try {
      await limiter.consume(key, points);
    } catch (res) {
      if (res instanceof RateLimiterRes) throw new RateLimitedError(message, Math.max(1, Math.ceil(res.msBeforeNext / 1000)));
      // Both the shared and the insurance counter failed: let the request through rather than
      // turn a limiter fault into a 500 for everyone (fail open, logged).
      this.log.warn({ err: (res as Error)?.message }, 'rate limiter failed; request allowed');
    }
  }
}
