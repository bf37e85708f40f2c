/**
 * Where Redis is: a URL (one server, or a cluster's seed node), or Sentinel, which names the
 * current primary of a master group. Every connection outside a cluster is made here, so the
 * store, its durable appends, the rate limits and the control channel all follow a failover.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { configuredUrlForLogs } from '../log.js';

export interface RedisTarget {
  /** redis:// or rediss:// URL; with sentinels only its credentials, database and TLS count. */
  url: string;
  /** Sentinels as "host:port" (empty: no Sentinel). */
  sentinels?: readonly string[];
  /** The Sentinel master group name. */
  name?: string;
}

/** Whether the config asks for the Redis store at all (a URL or Sentinel). */
export function usesRedis(target: RedisTarget): boolean {
  return target.url !== '' || (target.sentinels?.length ?? 0) > 0;
}

/**
 * redis.url with its scheme: ioredis also takes a host[:port] without one (read as redis://), and
 * a socket path, which stays as written. Parsed without the scheme, `user:pw@host` would read as
 * scheme `user:`.
 */
export function withRedisScheme(url: string): string {
  return url === '' || url.startsWith('/') || url.includes('://') ? url : `redis://${url}`;
}

/** Where a log line may say it connects (no credentials). */
export function describeTarget(target: RedisTarget): string {
  if (target.sentinels?.length) return `sentinel ${target.name} via ${target.sentinels.join(',')}`;
  return target.url.startsWith('/') ? target.url : configuredUrlForLogs(withRedisScheme(target.url));
}

/**
 * A connection to the server (standalone) or to the current primary (Sentinel) with `options`.
 * Through Sentinel it reconnects to the new primary when Sentinel announces a failover
 * (+switch-master) and when the old one answers READONLY (demoted, still reachable).
 */
export function connectRedis(target: RedisTarget, options: RedisOptions): Redis {
  if (!target.sentinels?.length) return new Redis(target.url, options);
  const sentinels = target.sentinels.map((s) => {
    const at = s.lastIndexOf(':');
    return { host: s.slice(0, at), port: Number(s.slice(at + 1)) };
  });
  return new Redis({
    ...fromUrl(target.url),
    ...options,
    sentinels,
    name: target.name,
    role: 'master',
    failoverDetector: true,
    // A write that reached a demoted primary ran nothing (READONLY): reconnect, the caller retries.
    reconnectOnError: (err) => (err.message.startsWith('READONLY') ? 1 : false),
  });
}

/** Credentials, database and TLS of a URL given beside sentinels (its host is Sentinel's to choose). */
function fromUrl(url: string): RedisOptions {
  if (!url) return {};
  const parsed = new URL(withRedisScheme(url));
  const db = Number(parsed.pathname.slice(1));
  return {
    username: decodeURIComponent(parsed.username) || undefined,
    password: decodeURIComponent(parsed.password) || undefined,
    db: Number.isInteger(db) && db > 0 ? db : undefined,
    tls: parsed.protocol === 'rediss:' ? {} : undefined,
    enableTLSForSentinelMode: parsed.protocol === 'rediss:' ? true : undefined,
  };
}
