/**
 * The newest messages of subscribed streams, so a read at or near a stream's head needs no store
 * call. Pure data structure: no I/O, no timers; the Redis store feeds it what it sees (a
 * confirmed subscription, a read and the ticket taken before sending it, a wake-up, its own
 * append) and asks it first on every read. It answers only when it can show the answer equals
 * what the store would have returned for the newest state it was told of; see docs/GUARANTEES.md.
 *
 * Invariants, per stream:
 * - state exists only while the stream's subscription is confirmed on the current subscriber
 *   connection (open() .. close()/clear()); every wake-up published after that is seen, in order;
 * - an entry comes only from a read sent after open() such that every wake-up seen between sending
 *   it and its reply is already in it (same epoch, lastSeq not above the read's); any other may be
 *   newer than the read and would be lost. Not from the
 *   wake-up of a fresh log (seqs 1..n): it may be older than an append of ours acknowledged
 *   before open(), or an older epoch's arriving after a read's reply;
 * - it is then extended only by carried wake-ups that continue it in the same epoch; anything it
 *   cannot follow (a gap, a bare wake-up that moves the head, another epoch) drops it;
 * - it holds the true epoch, lastSeq and firstSeq (maxLength trimming is applied as LTRIM does),
 *   messages ending exactly at lastSeq, and is invalid once its keys may have expired.
 */
import { withinBytes, type StreamRead, type WakeHint } from './store.js';

/** The retention rule appends of a stream apply (the same config on every gateway). */
export interface TailRetention {
  maxLength: number;
  /** The log's TTL after an append, ms. */
  ttlMs: number;
}

export interface TailCacheOptions {
  /** Newest messages kept per stream. */
  maxMessages: number;
  /** Most characters of messages kept per stream. */
  maxBytes: number;
  /** Most characters kept over all streams; beyond it new messages are not kept (heads still are). */
  totalBytes: number;
  retention(stream: string): TailRetention;
  /** Monotonic clock, ms (default performance.now). */
  now?: () => number;
}

/** Taken just before a read is sent; the read may seed the cache only with its own ticket. */
export interface SeedTicket {
  readonly state: object;
  readonly wakes: number;
  readonly appends: number;
  readonly at: number;
}

interface Entry {
  epoch: string;
  lastSeq: number;
  firstSeq: number;
  /** Stored JSON of seqs lastSeq - messages.length + 1 .. lastSeq. */
  messages: string[];
  chars: number;
  /** Clock time after which the log or its metadata may have expired. */
  validUntil: number;
}

/** Wake-ups remembered per stream to judge the reads in flight; a read older than these does not seed. */
const RECENT_WAKES = 32;

interface StreamState {
  /** Wake-ups seen since open(). */
  wakes: number;
  /** The last RECENT_WAKES of them (epoch, lastSeq), oldest first. */
  recent: { epoch: string; lastSeq: number }[];
  /** Appends of this process noted since open(). */
  appends: number;
  entry?: Entry;
  /** This process appended up to here: answer only once the entry has caught up (read-your-writes). */
  floor?: { epoch: string; seq: number };
}

/**
 * Slack before a TTL is treated as spent: the wake-up that refreshed it was published before it
 * was received. At least 1 s, at most 5 s, a tenth of the TTL in between.
 */
export function expiryMargin(ttlMs: number): number {
  return Math.max(1000, Math.min(ttlMs / 10, 5000));
}

export class TailCache {
  private readonly live = new Map<string, StreamState>();
  private chars = 0;
  private readonly now: () => number;
  hits = 0;
  misses = 0;

  constructor(private readonly options: TailCacheOptions) {
    this.now = options.now ?? (() => performance.now());
  }

  /** Streams with an entry. */
  get size(): number {
    let n = 0;
    for (const s of this.live.values()) if (s.entry) n++;
    return n;
  }

  /** Characters of messages held over all streams. */
  get heldChars(): number {
    return this.chars;
  }

  /** The stream's subscription is confirmed on the current connection: from now on every wake-up is seen. */
  open(stream: string): void {
    if (!this.live.has(stream)) this.live.set(stream, { wakes: 0, recent: [], appends: 0 });
  }

  /** The stream is no longer subscribed (or is being unsubscribed): forget it. */
  close(stream: string): void {
    const state = this.live.get(stream);
    if (!state) return;
    this.drop(state);
    this.live.delete(stream);
  }

  /** The subscriber connection dropped: wake-ups may have been lost for every stream. */
  clear(): void {
    this.live.clear();
    this.chars = 0;
  }

  /**
   * Drops every entry but keeps following the streams: a store command failed, and answers must
   * come from the store again (503 while it is away) until a read succeeds and seeds anew.
   */
  forget(): void {
    for (const state of this.live.values()) state.entry = undefined;
    this.chars = 0;
  }

  /** A ticket for a read about to be sent, or undefined when the stream is not cacheable now. */
  ticket(stream: string): SeedTicket | undefined {
    const state = this.live.get(stream);
    return state && { state, wakes: state.wakes, appends: state.appends, at: this.now() };
  }

  /**
   * A store read came back. `lifeMs` is how long its keys had left to live when it ran (-1: no
   * expiry). Seeds the entry only if nothing that could be newer than the read was seen since its ticket.
   */
  seed(stream: string, ticket: SeedTicket, read: StreamRead, lifeMs: number): void {
    const state = this.live.get(stream);
    if (!state || state !== ticket.state || !this.includesWakesSince(state, ticket.wakes, read)) return;
    this.drop(state);
    // No log: caching that would need proof that no append is racing; not worth it.
    if (read.epoch === '') return;
    const validUntil = ticket.at + (lifeMs < 0 ? Number.MAX_SAFE_INTEGER : lifeMs) - expiryMargin(this.options.retention(stream).ttlMs);
    if (validUntil <= this.now()) return;
    // Sent after every append this process noted, so the read includes them.
    if (ticket.appends === state.appends) state.floor = undefined;
    const complete = read.messages.length > 0 && read.after + read.messages.length === read.lastSeq;
    state.entry = { epoch: read.epoch, lastSeq: read.lastSeq, firstSeq: read.firstSeq, messages: [], chars: 0, validUntil };
    if (complete) this.hold(state.entry, read.messages);
  }

  /** A wake-up arrived for a stream (call before the listener sees it, so its reads see the new head). */
  wake(stream: string, hint: WakeHint): void {
    const state = this.live.get(stream);
    if (!state) return;
    state.wakes++;
    state.recent.push({ epoch: hint.epoch, lastSeq: hint.lastSeq });
    if (state.recent.length > RECENT_WAKES) state.recent.shift();
    const entry = state.entry;
    const messages = hint.messages;
    if (!entry) return;
    if (hint.epoch !== entry.epoch) return this.drop(state);
    if (hint.lastSeq <= entry.lastSeq) return; // stale: the entry already includes it
    // Expired before this append, the log restarted empty: firstSeq would jump.
    if (entry.validUntil <= this.now()) return this.drop(state);
    if (!messages?.length) return this.drop(state);
    const firstOfHint = hint.lastSeq - messages.length + 1;
    if (firstOfHint > entry.lastSeq + 1) return this.drop(state);
    const added = messages.slice(entry.lastSeq + 1 - firstOfHint);
    const rule = this.options.retention(stream);
    entry.lastSeq = hint.lastSeq;
    // LTRIM keeps the newest maxLength.
    entry.firstSeq = Math.max(entry.firstSeq, entry.lastSeq - rule.maxLength + 1);
    // The append refreshed the TTLs (the log's is the shorter) a little before we got its wake-up.
    entry.validUntil = this.now() + rule.ttlMs - expiryMargin(rule.ttlMs);
    this.hold(entry, added);
    this.checkFloor(state);
  }

  /** This process appended to the stream and got seqs up to `seq` of `epoch` back. */
  appended(stream: string, epoch: string, seq: number): void {
    const state = this.live.get(stream);
    if (!state) return;
    state.appends++;
    const entry = state.entry;
    if (entry && entry.epoch === epoch && entry.lastSeq >= seq) return;
    if (entry && entry.epoch !== epoch) this.drop(state);
    const floor = state.floor;
    if (!floor || floor.epoch !== epoch || floor.seq < seq) state.floor = { epoch, seq };
  }

  /** The stream's head when an answer from memory is possible now (see read()), else undefined. */
  head(stream: string): { epoch: string; lastSeq: number } | undefined {
    const state = this.live.get(stream);
    const entry = state?.entry;
    if (!state || !entry || state.floor || entry.validUntil <= this.now()) return undefined;
    return { epoch: entry.epoch, lastSeq: entry.lastSeq };
  }

  /** The answer the store would give (maxBytes as Store.read), or undefined when this cannot be proven from memory. */
  read(stream: string, after: number, limit: number, maxBytes = 0): StreamRead | undefined {
    const answer = this.answer(stream, after, limit, maxBytes);
    if (answer) this.hits++;
    else this.misses++;
    return answer;
  }

  private answer(stream: string, after: number, limit: number, maxBytes: number): StreamRead | undefined {
    const state = this.live.get(stream);
    const entry = state?.entry;
    if (!state || !entry) return undefined;
    if (entry.validUntil <= this.now()) {
      this.drop(state);
      return undefined;
    }
    if (state.floor) return undefined;
    const { epoch, lastSeq, firstSeq } = entry;
    // The same arithmetic as read-2.lua.
    const from = Math.max(after + 1, firstSeq);
    const readAfter = Math.max(after, firstSeq - 1);
    // Literals naming every field, not `{ ...head, messages }`: see parsePollParams (routes/poll.ts).
    if (limit <= 0 || from > lastSeq) return { stream, epoch, lastSeq, firstSeq, after: readAfter, messages: [] };
    const heldFrom = lastSeq - entry.messages.length + 1;
    if (from < heldFrom) return undefined;
    const start = from - heldFrom;
    const cut = withinBytes(entry.messages.slice(start, start + limit), maxBytes);
    const read: StreamRead = { stream, epoch, lastSeq, firstSeq, after: readAfter, messages: cut.messages };
    if (cut.nextBytes !== undefined) read.nextBytes = cut.nextBytes;
    return read;
  }

  /**
   * Whether every wake-up seen since the ticket is in the read. One published after the read ran
   * has a higher seq in the same epoch, or another epoch (a new log restarts at seq 1): both fail.
   */
  private includesWakesSince(state: StreamState, since: number, read: StreamRead): boolean {
    const count = state.wakes - since;
    if (count === 0) return true;
    if (count > state.recent.length) return false;
    return state.recent.slice(-count).every((w) => w.epoch === read.epoch && w.lastSeq <= read.lastSeq);
  }

  private checkFloor(state: StreamState): void {
    const { floor, entry } = state;
    if (floor && entry && floor.epoch === entry.epoch && entry.lastSeq >= floor.seq) state.floor = undefined;
  }

  private drop(state: StreamState): void {
    if (state.entry) this.chars -= state.entry.chars;
    state.entry = undefined;
  }

  /**
   * Appends `added` (ending at entry.lastSeq, contiguous with what it holds) and trims from the
   * front to the stream's retained range and the size bounds; over the global bound, keeps none.
   */
  private hold(entry: Entry, added: readonly string[]): void {
    const { maxMessages, maxBytes, totalBytes } = this.options;
    let addedChars = 0;
    for (const m of added) addedChars += m.length;
    if (this.chars + addedChars > totalBytes) {
      this.chars -= entry.chars;
      entry.messages = [];
      entry.chars = 0;
      return;
    }
    entry.messages.push(...added);
    entry.chars += addedChars;
    this.chars += addedChars;
    const keep = Math.min(maxMessages, entry.lastSeq - entry.firstSeq + 1);
    let cut = Math.max(0, entry.messages.length - keep);
    let chars = entry.chars;
    for (let i = 0; i < cut; i++) chars -= entry.messages[i]!.length;
    while (cut < entry.messages.length && chars > maxBytes) chars -= entry.messages[cut++]!.length;
    if (cut > 0) {
      entry.messages = entry.messages.slice(cut);
      this.chars -= entry.chars - chars;
      entry.chars = chars;
    }
  }
}
