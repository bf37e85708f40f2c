/**
 * Who is connected to this process, on every transport: one Session per WebSocket, per event
 * stream, and per long-poll session (a subject polling with one `conn` id, kept while it polls
 * again within its hold plus `presence.pollGraceSeconds`). What uses it: presence (which streams a
 * subject holds), POST /disconnect (every session of a subject, kicked the way its transport ends),
 * the connect/disconnect hooks and the connection gauges. Transports open and end sessions; they
 * never talk to those users directly.
 */
import type { GatewayError } from './errors.js';

export type SessionTransport = 'poll' | 'sse' | 'ws';

/** Why a session ended, as the disconnect hook and the logs say it. */
export type SessionEnd = 'closed' | 'disconnected' | 'expired' | 'shutdown' | 'idle';

/** What is told about sessions; each callback runs synchronously where the change happens. */
export interface SessionListener {
  opened?(session: Session): void;
  /** The session now also reads `streams` (first ones included, right after opened). */
  joined?(session: Session, streams: readonly string[]): void;
  /** The session no longer reads `streams` (all of them just before ended). */
  left?(session: Session, streams: readonly string[]): void;
  ended?(session: Session, reason: SessionEnd): void;
}

let nextId = 0;

export class Session {
  /** Unique in this process. */
  readonly id = ++nextId;
  readonly openedAt = Date.now();
  private current: readonly string[];
  private done = false;
  /** The `iat` (seconds) of the token the connection holds now; undefined for API keys. A revoke ends it when older. */
  issuedAt?: number;

  constructor(
    private readonly owner: Sessions,
    readonly subject: string,
    readonly transport: SessionTransport,
    streams: readonly string[],
    /** Ends the connection the way its transport does (close 4403, an `end` event, a 403 answer); then the transport ends the session. */
    private readonly kickFn: (err: GatewayError) => void,
  ) {
    this.current = [...new Set(streams)];
  }

  get streams(): readonly string[] {
    return this.current;
  }

  get ended(): boolean {
    return this.done;
  }

  /** Replaces the streams it reads; listeners hear what joined and what left. */
  setStreams(streams: readonly string[]): void {
    if (this.done) return;
    const before = new Set(this.current);
    const after = new Set(streams);
    const left = this.current.filter((s) => !after.has(s));
    const joined = streams.filter((s) => !before.has(s));
    this.current = [...after];
    if (left.length) this.owner.emitLeft(this, left);
    if (joined.length) this.owner.emitJoined(this, joined);
  }

  kick(err: GatewayError): void {
    if (!this.done) this.kickFn(err);
  }

  /** The one end of a session; later calls do nothing. */
  end(reason: SessionEnd): void {
    if (this.done) return;
    if (this.current.length) this.owner.emitLeft(this, this.current);
    this.done = true;
    this.owner.remove(this, reason);
  }
}

export class Sessions {
  private readonly bySubject = new Map<string, Set<Session>>();
  private readonly listeners: SessionListener[] = [];
  private readonly counts: Record<SessionTransport, number> = { poll: 0, sse: 0, ws: 0 };

  listen(listener: SessionListener): void {
    this.listeners.push(listener);
  }

  /** Open sessions of a transport in this process. */
  count(transport: SessionTransport): number {
    return this.counts[transport];
  }

  /**
   * A new session reading `streams`, holding a token issued at `issuedAt` (seconds; undefined for
   * API keys); the transport ends it (session.end) when the connection ends.
   */
  open(subject: string, transport: SessionTransport, streams: readonly string[], kick: (err: GatewayError) => void, issuedAt?: number): Session {
    const session = new Session(this, subject, transport, streams, kick);
    session.issuedAt = issuedAt;
    let set = this.bySubject.get(subject);
    if (!set) this.bySubject.set(subject, (set = new Set()));
    set.add(session);
    this.counts[transport]++;
    for (const l of this.listeners) l.opened?.(session);
    if (session.streams.length) this.emitJoined(session, session.streams);
    return session;
  }

  /** The open sessions of a subject. */
  of(subject: string): Session[] {
    return [...(this.bySubject.get(subject) ?? [])];
  }

  /**
   * Kicks every session of `subject` opened before `before` (ms) and, when `issuedBefore` (seconds)
   * is given (a revoke), every one holding a token issued at or before it, wherever it was opened
   * meanwhile; returns how many.
   */
  kick(subject: string, before: number, err: GatewayError, issuedBefore?: number): number {
    let n = 0;
    for (const s of this.of(subject)) {
      const revoked = issuedBefore !== undefined && (s.issuedAt === undefined || s.issuedAt <= issuedBefore);
      if (s.openedAt > before && !revoked) continue;
      s.kick(err);
      n++;
    }
    return n;
  }

  emitJoined(session: Session, streams: readonly string[]): void {
    for (const l of this.listeners) l.joined?.(session, streams);
  }

  emitLeft(session: Session, streams: readonly string[]): void {
    for (const l of this.listeners) l.left?.(session, streams);
  }

  remove(session: Session, reason: SessionEnd): void {
    const set = this.bySubject.get(session.subject);
    set?.delete(session);
    if (set?.size === 0) this.bySubject.delete(session.subject);
    this.counts[session.transport]--;
    for (const l of this.listeners) l.ended?.(session, reason);
  }
}
