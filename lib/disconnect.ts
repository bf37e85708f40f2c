/**
 * POST /disconnect: every session of a subject, on every node, ended the way its transport ends
 * (WebSocket close 4403, an SSE `end` event, a parked poll answered 403), and optionally its
 * tokens revoked: tokens issued (`iat`) at or before the second of the disconnect are refused
 * with 401 `token revoked` for `disconnect.revokeSeconds`, so reconnects fail.
 *
 * Across nodes (Redis) the record is the truth and Pub/Sub only the fast path: each disconnect is
 * kept in a zset (`<prefix>ctl:disconnects`, by time) and published. Every node applies what it
 * hears at once, re-reads the zset every `disconnect.recheckMs` and whenever its subscriber
 * reconnects, and reads the revocations in force when it starts. So a lost message delays a
 * disconnect by one re-check at most, never forever. Applying an event twice changes nothing: it
 * ends sessions opened before it (and, for a revoke, those holding a token it revokes), and a
 * session opened after it with a newer token is not touched.
 */
import { ForbiddenError } from './errors.js';
import type { Logger } from './log.js';
import type { Sessions } from './sessions.js';
import type { RedisControl } from './store/redis-control.js';

export interface DisconnectEvent {
  sub: string;
  /** When it was asked (ms, the asking node's clock): sessions opened before it end. */
  at: number;
  /** Tokens issued at or before `at` are refused until then (ms); 0: no revocation. */
  until: number;
}

export interface DisconnectConfig {
  revokeSeconds: number;
  recheckMs: number;
}

/** How a disconnect ends a session: the usual 403 on every transport. */
export const DISCONNECTED = () => new ForbiddenError('disconnected by the server');

/** Where disconnects are shared: nowhere (one process) or Redis. */
export interface DisconnectBus {
  /** Records and announces an event to the other nodes. */
  publish(event: DisconnectEvent): Promise<void>;
  /** Events recorded at or after `since` (ms). */
  since(since: number): Promise<DisconnectEvent[]>;
  /** Calls `apply` for each event heard, and `resync` when some may have been missed. */
  listen(apply: (event: DisconnectEvent) => void, resync: () => void): Promise<void>;
  close(): Promise<void>;
}

export class Disconnects {
  /** subject -> { at, until } of the latest revocation still in force. */
  private readonly revoked = new Map<string, { at: number; until: number }>();
  private recheck?: NodeJS.Timeout;
  /** Events at or after this were looked at by the last re-read. */
  private checkedSince = 0;

  constructor(private readonly sessions: Sessions, private readonly bus: DisconnectBus | undefined, private readonly config: DisconnectConfig, private readonly log: Logger) {}

  /** Subscribes, reads the revocations in force, and starts the re-checks. Throws StoreUnavailableError. */
  async start(): Promise<void> {
    if (!this.bus) return;
    await this.bus.listen((e) => this.apply(e), () => void this.reread());
    const now = Date.now();
    for (const e of await this.bus.since(now - this.config.revokeSeconds * 1000)) this.remember(e);
    this.checkedSince = now;
    this.recheck = setInterval(() => void this.reread(), this.config.recheckMs);
    this.recheck.unref();
  }

  /** Ends the subject's sessions here and on every node; with `revoke`, refuses its older tokens. Throws store errors. */
  async disconnect(sub: string, revoke: boolean): Promise<{ sub: string; connections: number; revokedUntil?: number }> {
    const at = Date.now();
    const event: DisconnectEvent = { sub, at, until: revoke ? at + this.config.revokeSeconds * 1000 : 0 };
    await this.bus?.publish(event);
    const connections = this.apply(event);
    return { sub, connections, ...(revoke ? { revokedUntil: event.until } : {}) };
  }

  /**
   * Whether a token of `subject` issued at `issuedAtSeconds` (its `iat`; undefined counts as
   * revoked) is refused. A map lookup: revocations are few.
   */
  isRevoked(subject: string, issuedAtSeconds: number | undefined): boolean {
    if (this.revoked.size === 0) return false;
    const r = this.revoked.get(subject);
    if (!r) return false;
    if (Date.now() >= r.until) {
      this.revoked.delete(subject);
      return false;
    }
    return issuedAtSeconds === undefined || issuedAtSeconds <= Math.floor(r.at / 1000);
  }

  async close(): Promise<void> {
    clearInterval(this.recheck);
    await this.bus?.close();
  }

  /**
   * Applies an event here: sessions opened before it end, and with a revoke in force, also those
   * opened since with a token it revokes (a node that heard late let them in); returns how many.
   */
  private apply(event: DisconnectEvent): number {
    this.remember(event);
    const revoking = event.until > Date.now() ? Math.floor(event.at / 1000) : undefined;
    const n = this.sessions.kick(event.sub, event.at, DISCONNECTED(), revoking);
    if (n) this.log.info({ sub: event.sub, connections: n }, 'disconnected');
    return n;
  }

  private remember(event: DisconnectEvent): void {
    if (event.until <= Date.now()) return;
    const known = this.revoked.get(event.sub);
    if (!known || known.at < event.at) this.revoked.set(event.sub, { at: event.at, until: event.until });
  }

  /** The record is the truth: what Pub/Sub may have dropped since the last look is applied now. */
  private async reread(): Promise<void> {
    // Two seconds back: an event recorded by a node whose clock is a little behind ours.
    const since = this.checkedSince - 2000;
    const now = Date.now();
    try {
      for (const e of await this.bus!.since(since)) this.apply(e);
      this.checkedSince = now;
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'disconnect re-check failed; next time');
    }
  }
}

/** Disconnects over Redis: a zset of events by time (trimmed to the revocation window) and a channel. */
export class RedisDisconnectBus implements DisconnectBus {
  private readonly key: string;

  constructor(private readonly redis: RedisControl, private readonly keepMs: number) {
    this.key = redis.key('ctl:disconnects');
  }

  async publish(event: DisconnectEvent): Promise<void> {
    const json = JSON.stringify(event);
    await this.redis.run(async (cmd) => {
      await cmd.zadd(this.key, event.at, json);
      await cmd.zremrangebyscore(this.key, '-inf', event.at - this.keepMs);
      await cmd.pexpire(this.key, this.keepMs);
      await cmd.publish(this.key, json);
    });
  }

  async since(since: number): Promise<DisconnectEvent[]> {
    const members = await this.redis.run((cmd) => cmd.zrangebyscore(this.key, since, '+inf'));
    return members.map((m) => JSON.parse(m) as DisconnectEvent);
  }

  async listen(apply: (event: DisconnectEvent) => void, resync: () => void): Promise<void> {
    this.redis.onResync(resync);
    await this.redis.subscribe('ctl:disconnects', (payload) => {
      try {
        apply(JSON.parse(payload) as DisconnectEvent);
      } catch {
        // not ours
      }
    });
  }

  async close(): Promise<void> {}
}
