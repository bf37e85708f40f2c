/**
 * Presence: who reads a stream now, on every transport and every node. A subject is present on a
 * stream while one of its sessions (lib/sessions.ts: a WebSocket subscription, an event stream, a
 * long-poll session) reads it; `connections` counts those sessions. Only streams matching
 * `presence.streams` are tracked. Where it is kept is the backend's business: in this process for
 * the memory store (MemoryPresence, below), in Redis with heartbeats and expiry for the Redis
 * store (lib/store/redis-presence.ts). Join and leave events (first session in, last session
 * out) of streams matching `presence.joinLeave` are appended to the companion stream
 * `<stream>@presence` as ordinary messages, so clients that want them subscribe to it with any
 * transport and resume it by cursor like any stream (docs/PROTOCOL.md, "Presence").
 */
import { nanoid } from 'nanoid';
import type { Logger } from './log.js';
import type { Session, SessionListener } from './sessions.js';
import { compilePatterns, isStreamName } from './streams.js';
import { messageTail, SERVER_SENDER, type Store } from './store/store.js';

/** The companion stream's suffix: `room:1` -> `room:1@presence`; never tracked itself. */
export const PRESENCE_SUFFIX = '@presence';

export interface PresenceConfig {
  /** Stream patterns whose presence is tracked (exact names or `prefix*`). */
  streams: readonly string[];
  /** Patterns whose join and leave events go to `<stream>@presence`. */
  joinLeave: readonly string[];
}

/** One member: a session reading a stream, named uniquely across nodes. */
export interface Member {
  /** `<node>|<session>|<subject>`: the subject last, since a token's `sub` may hold any character. */
  id: string;
  sub: string;
}

export interface PresenceChange {
  type: 'join' | 'leave';
  sub: string;
}

export interface PresenceEntry {
  sub: string;
  connections: number;
}

/** Where presence is kept. Each call reports the joins and leaves it caused (expired members included). */
export interface PresenceBackend {
  add(stream: string, member: Member): Promise<PresenceChange[]>;
  remove(stream: string, member: Member): Promise<PresenceChange[]>;
  list(stream: string): Promise<{ entries: PresenceEntry[]; changes: PresenceChange[] }>;
  /** Joins and leaves found by the backend itself (members of a dead node expiring). */
  onChanges(listener: (stream: string, changes: PresenceChange[]) => void): void;
  close(): Promise<void>;
}

/** `<stream>@presence`, the stream join and leave events of `stream` are appended to. */
export function presenceStream(stream: string): string {
  return stream + PRESENCE_SUFFIX;
}

export class Presence implements SessionListener {
  /** This process, in member ids. */
  readonly node = nanoid(10).replace(/[|]/g, '_');
  private readonly tracked: (stream: string) => boolean;
  private readonly announced: (stream: string) => boolean;

  constructor(config: PresenceConfig, private readonly backend: PresenceBackend, private readonly store: Store, private readonly log: Logger) {
    const tracked = compilePatterns(config.streams);
    this.tracked = (s) => tracked(s) && !s.endsWith(PRESENCE_SUFFIX);
    const announced = compilePatterns(config.joinLeave);
    // `<stream>@presence` must itself be a stream name a client can subscribe to (200 characters at most).
    this.announced = (s) => announced(s) && isStreamName(presenceStream(s));
    backend.onChanges((stream, changes) => this.announce(stream, changes));
  }

  /** Whether a stream's presence is kept (presence.streams). */
  isTracked(stream: string): boolean {
    return this.tracked(stream);
  }

  joined(session: Session, streams: readonly string[]): void {
    for (const s of streams) if (this.tracked(s)) this.run(s, this.backend.add(s, this.member(session)));
  }

  left(session: Session, streams: readonly string[]): void {
    for (const s of streams) if (this.tracked(s)) this.run(s, this.backend.remove(s, this.member(session)));
  }

  /** `{"stream","subjects":[{"sub","connections"}],"count"}`, subjects sorted. Throws store errors. */
  async list(stream: string): Promise<{ stream: string; subjects: PresenceEntry[]; count: number }> {
    const { entries, changes } = await this.backend.list(stream);
    this.announce(stream, changes);
    entries.sort((a, b) => (a.sub < b.sub ? -1 : a.sub > b.sub ? 1 : 0));
    return { stream, subjects: entries, count: entries.length };
  }

  close(): Promise<void> {
    return this.backend.close();
  }

  private member(session: Session): Member {
    return { id: `${this.node}|${session.id}|${session.subject}`, sub: session.subject };
  }

  private run(stream: string, changes: Promise<PresenceChange[]>): void {
    changes.then(
      (c) => this.announce(stream, c),
      // The heartbeat writes every member again (Redis); a failed remove expires with its heartbeat.
      (err: Error) => this.log.warn({ err: err.message, stream }, 'presence update failed'),
    );
  }

  /** Appends each join/leave to `<stream>@presence` when the stream asked for events. */
  private announce(stream: string, changes: readonly PresenceChange[]): void {
    if (changes.length === 0 || !this.announced(stream)) return;
    const ts = Date.now();
    const messages = changes.map((c) => {
      const id = nanoid();
      return { id, sender: SERVER_SENDER, tail: messageTail(id, ts, JSON.stringify({ type: c.type, stream, sub: c.sub })), idMadeHere: true };
    });
    const notStored = (err: Error) => this.log.warn({ err: err.message, stream }, 'presence event not stored');
    try {
      const stored = this.store.append(presenceStream(stream), messages);
      if (stored instanceof Promise) stored.catch(notStored);
    } catch (err) {
      notStored(err as Error);
    }
  }
}

/** Presence in this process (the memory store): exact, nothing expires but what leaves. */
export class MemoryPresence implements PresenceBackend {
  private readonly streams = new Map<string, { members: Map<string, string>; counts: Map<string, number> }>();

  async add(stream: string, member: Member): Promise<PresenceChange[]> {
    let s = this.streams.get(stream);
    if (!s) this.streams.set(stream, (s = { members: new Map(), counts: new Map() }));
    if (s.members.has(member.id)) return [];
    s.members.set(member.id, member.sub);
    const n = (s.counts.get(member.sub) ?? 0) + 1;
    s.counts.set(member.sub, n);
    return n === 1 ? [{ type: 'join', sub: member.sub }] : [];
  }

  async remove(stream: string, member: Member): Promise<PresenceChange[]> {
    const s = this.streams.get(stream);
    if (!s?.members.delete(member.id)) return [];
    const n = s.counts.get(member.sub)! - 1;
    if (n > 0) {
      s.counts.set(member.sub, n);
      return [];
    }
    s.counts.delete(member.sub);
    if (s.members.size === 0) this.streams.delete(stream);
    return [{ type: 'leave', sub: member.sub }];
  }

  async list(stream: string): Promise<{ entries: PresenceEntry[]; changes: PresenceChange[] }> {
    const counts = this.streams.get(stream)?.counts ?? new Map<string, number>();
    return { entries: [...counts].map(([sub, connections]) => ({ sub, connections })), changes: [] };
  }

  onChanges(): void {}

  async close(): Promise<void> {
    this.streams.clear();
  }
}
