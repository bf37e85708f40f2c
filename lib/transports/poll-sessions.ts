/**
 * Long-poll sessions: a long-polling client has no connection that stays open, so it is a Session
 * (lib/sessions.ts) while it polls again within `graceMs` of its last answer. A session is one
 * subject polling with one `conn` id (or, without one, the same streams). One shared sweep timer
 * ends idle sessions, not a timer per client; it runs only while some session is idle.
 */
import type { GatewayError } from '../errors.js';
import type { Session, Sessions } from '../sessions.js';

interface Entry {
  key: string;
  session: Session;
  /** Polls of this session in progress (a newer poll of the same conn may start before the older ends). */
  active: number;
  /** When its last poll ended (ms); meaningful while active is 0. */
  idleSince: number;
  /** The parked poll's turn, if one is parked: a kick answers it. */
  parked?: PollTurn;
  /** The error the session was kicked with (POST /disconnect): a poll of it that parks later gets it. */
  kickedWith?: GatewayError;
}

/** How often idle sessions are looked at (ms): a session ends at most this late after its grace. */
const SWEEP_MS = 1000;

export class PollSessions {
  private readonly entries = new Map<string, Entry>();
  private readonly idle = new Set<Entry>();
  private sweeper?: NodeJS.Timeout;

  constructor(private readonly sessions: Sessions, private readonly graceMs: number) {}

  /** Open long-poll sessions. */
  get size(): number {
    return this.entries.size;
  }

  /**
   * A poll of `subject` begins: finds or opens its session and sets its streams. Call the returned
   * `end` once when the poll is answered; `parked` while it is parked, so a kick answers it.
   */
  begin(subject: string, conn: string | undefined, streams: readonly string[], issuedAt?: number): PollTurn {
    const key = conn === undefined ? `${subject}\0\0${streams.join(',')}` : `${subject}\0${conn}`;
    let entry = this.entries.get(key);
    if (!entry || entry.session.ended) {
      const e: Entry = { key, active: 0, idleSince: 0, session: undefined!, parked: undefined, kickedWith: undefined };
      e.session = this.sessions.open(subject, 'poll', streams, (err) => {
        e.kickedWith = err;
        e.parked?.kick(err);
        this.close(key, e, 'disconnected');
      }, issuedAt);
      this.entries.set(key, (entry = e));
    } else if (!sameStreams(entry.session.streams, streams)) {
      entry.session.setStreams(streams);
    }
    entry.session.issuedAt = issuedAt;
    entry.active++;
    this.idle.delete(entry);
    // Not the key: the one just built is garbage at once, while a parked poll holds its turn for its
    // whole hold (and the young generation copies and promotes what a parked poll holds).
    return new PollTurn(this, entry);
  }

  /** Ends every session (shutdown). */
  closeAll(): void {
    for (const [key, entry] of [...this.entries]) this.close(key, entry, 'shutdown');
    clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  /** @internal PollTurn's end. */
  ended(entry: Entry, turn: PollTurn): void {
    if (entry.parked === turn) entry.parked = undefined;
    if (--entry.active > 0 || entry.session.ended) return;
    entry.idleSince = Date.now();
    this.idle.add(entry);
    if (!this.sweeper) {
      this.sweeper = setInterval(() => this.sweep(), Math.min(SWEEP_MS, Math.max(10, this.graceMs)));
      this.sweeper.unref();
    }
  }

  private close(key: string, entry: Entry, reason: 'disconnected' | 'idle' | 'shutdown'): void {
    this.idle.delete(entry);
    if (this.entries.get(key) === entry) this.entries.delete(key);
    entry.session.end(reason);
  }

  /** Only idle sessions are looked at: a process with 20,000 parked polls sweeps none of them. */
  private sweep(): void {
    const cutoff = Date.now() - this.graceMs;
    for (const entry of [...this.idle]) {
      if (entry.active === 0 && entry.idleSince <= cutoff) this.close(entry.key, entry, 'idle');
    }
    if (this.idle.size === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }
}

/** A parked poll, as its turn knows it: a kick (POST /disconnect) answers it with `err`. */
export interface Kickable {
  kicked(err: GatewayError): void;
  /** A newer poll of the same connection took its place. */
  superseded(): void;
}

/** One poll's part in its session. */
export class PollTurn {
  private done = false;
  // The parked poll itself, not a closure over it: a closure and its context per parked poll, held
  // for the whole hold, were 96 bytes (`heap.js --held`).
  private parkedPoll?: Kickable;
  constructor(private readonly owner: PollSessions, private readonly entry: Entry) {}

  /** While parked, a kick (POST /disconnect) answers the poll through its `kicked`. */
  parked(poll: Kickable): void {
    if (this.done) return;
    this.parkedPoll = poll;
    this.entry.parked = this;
  }

  kick(err: GatewayError): void {
    this.parkedPoll?.kicked(err);
  }

  /**
   * The error its session was kicked with, when that happened before this turn's poll parked (while
   * it read): the poll is answered with it instead of parking on a session that is gone.
   */
  get kickedWith(): GatewayError | undefined {
    return this.entry.kickedWith;
  }

  /**
   * One parked poll per connection: answers the poll of another turn of this session that is
   * parked (superseded), if any. The session is the connection's (subject and conn), so no table
   * of parked polls by connection is needed (WaiterLink, lib/waiters.ts, says why none).
   */
  supersedeOthers(): void {
    const other = this.entry.parked;
    if (other && other !== this) other.parkedPoll?.superseded();
  }

  end(): void {
    if (this.done) return;
    this.done = true;
    this.owner.ended(this.entry, this);
  }
}

function sameStreams(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
