/**
 * Caps on long-lived connections (parked polls, SSE streams and WebSockets share one set of
 * counters): per subject, per client IP and per process. acquire() either throws or returns the
 * slot, whose release() gives it back; calling it more than once is harmless.
 */
import { OverloadedError, RateLimitedError } from '../errors.js';

export interface CapLimits {
  /** Open connections one subject (token `sub`) may hold; API keys are not capped per subject. */
  perSubject: number;
  /** Open connections from one client IP. */
  perIp: number;
  /** Open connections in this process. */
  perProcess: number;
  /** Retry-After (s) sent with a refusal. */
  retryAfterSeconds: number;
}

export interface CapHolder {
  /** Undefined for trusted callers (API keys), which only count per IP and per process. */
  subject?: string;
  ip: string;
}

export class ConnectionCaps {
  private readonly bySubject = new Map<string, number>();
  private readonly byIp = new Map<string, number>();
  private total = 0;

  constructor(private readonly limits: CapLimits) {}

  /** Connections open in this process. */
  get size(): number {
    return this.total;
  }

  /**
   * Takes a slot, or throws RateLimitedError (429: this subject or IP holds too many) or
   * OverloadedError (503: this process is full; another node may answer). The caller must
   * release the returned slot when the connection ends.
   */
  acquire(holder: CapHolder): CapSlot {
    const { limits } = this;
    if (this.total >= limits.perProcess) throw new OverloadedError('this gateway node holds too many connections, retry', limits.retryAfterSeconds);
    if ((this.byIp.get(holder.ip) ?? 0) >= limits.perIp) {
      throw new RateLimitedError(`too many open connections from this address (at most ${limits.perIp})`, limits.retryAfterSeconds);
    }
    const subject = holder.subject;
    if (subject !== undefined && (this.bySubject.get(subject) ?? 0) >= limits.perSubject) {
      throw new RateLimitedError(`too many open connections for this subject (at most ${limits.perSubject})`, limits.retryAfterSeconds);
    }
    this.total++;
    increment(this.byIp, holder.ip);
    if (subject !== undefined) increment(this.bySubject, subject);
    // An object, not a closure over the holder: a parked poll holds its slot for the whole hold.
    return new CapSlot(this, holder);
  }

  /** Called once per slot, by CapSlot.release(). */
  free(holder: CapHolder): void {
    this.total--;
    decrement(this.byIp, holder.ip);
    if (holder.subject !== undefined) decrement(this.bySubject, holder.subject);
  }
}

/** One taken slot; release() gives it back (once, however often it is called). */
export class CapSlot {
  private released = false;
  constructor(private readonly caps: ConnectionCaps, private readonly holder: CapHolder) {}

  release(): void {
    if (this.released) return;
    this.released = true;
    this.caps.free(this.holder);
  }
}

function increment(counts: Map<string, number>, key: string): void {
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

// Zero counts are deleted so the maps hold only keys with open connections (bounded by perProcess).
function decrement(counts: Map<string, number>, key: string): void {
  const n = (counts.get(key) ?? 1) - 1;
  if (n <= 0) counts.delete(key);
  else counts.set(key, n);
}
