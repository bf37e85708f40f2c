/**
 * The Store contract: bounded, per-stream logs with sequence numbers and epochs, plus wake-ups
 * when a stream grows. Storage only: who is waiting lives in lib/waiters.ts.
 * Both implementations (memory-store.ts, redis-store.ts) pass spec/store/contract.ts.
 */

/** One message to append. `tail` is the stored JSON after the seq: `,"id":..,"ts":..,"data":..}`. */
export interface NewMessage {
  id: string;
  /** Whose `id` it is: SERVER_SENDER for every API key, else the client token's subject (see idempotencyKey). */
  sender: string;
  tail: string;
  /**
   * The gateway made `id` (the send named none). No sender can retry with an id it never had, so
   * it is not remembered as an idempotency key (retryKey).
   */
  idMadeHere?: boolean;
}

/** The sender every API key shares: a backend's retry is recognised whichever of its keys sends it. */
export const SERVER_SENDER = '';

/**
 * Under what a message's id is remembered: unique per (stream, sender), so one sender's id can
 * never stand for another's message (issue 23). The server scope is the bare id, as every id
 * was before senders had scopes; a client's is `<id>@<subject>`, and ids never contain '@'
 * (MESSAGE_ID), so no two senders share a key.
 */
export function idempotencyKey(sender: string, id: string): string {
  return sender === SERVER_SENDER ? id : `${id}@${sender}`;
}

/**
 * What an append remembers a message under for retries (idempotencyKey), or undefined for an id
 * the gateway made: nobody can retry with it, and remembering it cost every append a lookup and
 * an entry (a sorted-set ZSCORE and ZADD on Redis) for a key that can never match
 * (docs/PERFORMANCE.md, "Ids nobody can retry with"). Both stores ask this.
 */
export function retryKey(m: NewMessage): string | undefined {
  return m.idMadeHere ? undefined : idempotencyKey(m.sender, m.id);
}

export interface AppendResult {
  stream: string;
  seq: number;
  id: string;
  /** The same sender's id was already in the retained log: nothing was appended, seq is the original's. */
  duplicate: boolean;
}

/**
 * A consistent snapshot of one stream. `messages` are stored JSON strings with seqs
 * after+1 .. after+messages.length, oldest first.
 */
export interface StreamRead {
  stream: string;
  /** '' when the stream has no log (never written, or everything expired). */
  epoch: string;
  lastSeq: number;
  /** Oldest retained seq; lastSeq + 1 when nothing is retained. */
  firstSeq: number;
  after: number;
  messages: string[];
  /**
   * Set when the read's byte bound stopped it before a message: that message's size in bytes
   * (messageBytes). Never set when the limit or the log's end stopped it.
   */
  nextBytes?: number;
}

/**
 * A hint that a stream grew. Without `messages`, readers must re-read the log, which is the truth.
 * With them, the hint is exact for one range: `messages` are the stored JSON of everything this
 * append added, seqs lastSeq - messages.length + 1 .. lastSeq of `epoch`, so a reader positioned
 * inside that range needs no read. Stores attach them only when small and complete.
 */
export interface WakeHint {
  epoch: string;
  lastSeq: number;
  messages?: readonly string[];
}

/** Largest total size (bytes) of the messages a wake-up carries; a bigger append wakes with a bare hint. */
export const WAKE_MESSAGES_MAX_BYTES = 16 * 1024;

export interface StoreListener {
  /** A stream this process subscribed to has new messages. */
  wake(stream: string, hint: WakeHint): void;
  /**
   * Wake-ups may have been lost: re-read the given streams, or every stream when none are given
   * (e.g. the subscriber connection dropped; a cluster shard's connection names only its streams).
   */
  resync(streams?: readonly string[]): void;
}

export interface Store {
  readonly kind: 'memory' | 'redis';
  /**
   * Appends messages to one stream atomically and in order; resolves only once they are stored.
   * A message whose id its sender already used for a message still in the retained log is not
   * appended again (other senders' ids do not count). Throws StoreUnavailableError when nothing
   * could be stored. A store that needs no I/O (the memory store) answers at once, without a
   * promise: each promise and await on a /send's way cost it a turn of the microtask queue
   * (docs/PERFORMANCE.md, "No promise for what needs no I/O").
   */
  append(stream: string, messages: readonly NewMessage[]): AppendResult[] | Promise<AppendResult[]>;
  /**
   * Up to `limit` messages after seq `after` (limit 0 reads only the stream's head), and at most
   * `maxBytes` bytes of them (messageBytes; omitted or 0: no byte bound): the read stops before
   * the first message that would pass it, even the first one, and reports its size (nextBytes).
   * Neither the store nor the reply ever holds much more than that (issue 23: a poll of many big
   * streams once made Redis send 60 MB for a 12 MB answer).
   */
  read(stream: string, after: number, limit: number, maxBytes?: number): Promise<StreamRead>;
  /**
   * Deliver wake-ups for this stream to the listener; resolves once they are flowing. Returns
   * undefined when they already flow (nothing to wait for): a parked poll then costs no promise.
   */
  subscribe(stream: string): Promise<void> | undefined;
  unsubscribe(stream: string): Promise<void>;
  setListener(listener: StoreListener): void;
  /** Resolves when the store answers; throws StoreUnavailableError otherwise. */
  ping(): Promise<void>;
  /** Counters for GET /stats (e.g. where reads were answered from); optional. */
  stats?(): Readonly<Record<string, number>>;
  /**
   * The stream's head known now without I/O (epoch '' and lastSeq 0: no log), or undefined when
   * it is not. Exact: every append acknowledged before the call is in it, or its wake-up is still
   * to come to a stream subscribed now. A parked waiter whose position is this head needs no
   * re-read after subscribing.
   */
  knownHead?(stream: string): { epoch: string; lastSeq: number } | undefined;
  close(): Promise<void>;
}

/** The stored JSON before the seq; the seq is only known inside the append. */
export function messageHead(stream: string): string {
  return `{"stream":${JSON.stringify(stream)},"seq":`;
}

/** The stored JSON after the seq. `dataJson` is already-serialized JSON. */
export function messageTail(id: string, ts: number, dataJson: string): string {
  return `,"id":${JSON.stringify(id)},"ts":${ts},"data":${dataJson}}`;
}

/** A stored message's size in bytes (UTF-8): what it adds to an answer, and what Lua's `#` counts in read-2.lua. */
export function messageBytes(message: string): number {
  return Buffer.byteLength(message);
}

/**
 * read-2.lua's byte bound, for the stores that read from memory: the longest prefix of `messages`
 * within `maxBytes` (0: all of them), and the size of the first message left out.
 */
export function withinBytes(messages: string[], maxBytes: number): { messages: string[]; nextBytes?: number } {
  if (maxBytes <= 0) return { messages };
  let used = 0;
  for (let i = 0; i < messages.length; i++) {
    const size = messageBytes(messages[i]!);
    if (used + size > maxBytes) return { messages: messages.slice(0, i), nextBytes: size };
    used += size;
  }
  return { messages };
}

/** Read at most this many messages in one store call, whatever a client asks for. */
export const MAX_READ = 10_000;

/** Seq larger than any real one: reading after it returns only the head. */
export const HEAD_ONLY = Number.MAX_SAFE_INTEGER;
