/**
 * What a client at a position receives from a stream: the one delivery contract shared by every
 * transport (long-poll, SSE, WebSocket). Positions move only past messages actually handed out;
 * a cursor older than the retained log is a reported gap, a changed epoch a reported reset.
 */
import { NO_POSITION, type Position } from './cursor.js';
import { fitBudget, splitBudget, type Budget } from './answer-budget.js';
import { HEAD_ONLY, MAX_READ, messageBytes, type Store, type StreamRead } from './store/store.js';

export type { Budget } from './answer-budget.js';

export interface Gap {
  stream: string;
  /** First and last seq that are no longer retained. */
  from: number;
  to: number;
}

export interface StreamDelivery {
  stream: string;
  messages: string[];
  position: Position;
  gap?: Gap;
  reset?: boolean;
  /** The stream has messages after `position` that this delivery left out (a limit, a budget, a short read). */
  more?: boolean;
  /** When a byte bound stopped it: the size in bytes of the next message (messageBytes). */
  nextBytes?: number;
}

/** The outcome of applying a read to a position; `reread` asks for a read after that seq. */
export type Resolution = StreamDelivery | { reread: number };

/**
 * Applies a snapshot of a stream to a client's position. Pure: the same inputs, the same answer.
 * - no log: nothing, or a reset if the client had seen messages of a log that is now gone;
 * - another epoch: reset, then the new log from its oldest retained message;
 * - same epoch but the client is ahead of the log (writes lost in a Redis crash): reset at the head;
 * - behind the oldest retained message: a gap, then the retained messages.
 * Takes at most `limit` messages; bytes are makeBatch's business.
 */
export function resolve(pos: Position, read: StreamRead, limit: number): Resolution {
  const { stream } = read;
  if (read.epoch === '') {
    return pos.seq === 0 ? { stream, messages: [], position: NO_POSITION } : { stream, messages: [], position: NO_POSITION, reset: true };
  }
  let seq = pos.seq;
  let reset = false;
  let gap: Gap | undefined;
  if (seq > 0 && pos.epoch !== read.epoch) {
    reset = true;
    seq = read.firstSeq - 1;
  } else if (seq > read.lastSeq) {
    reset = true;
    seq = read.lastSeq;
  } else if (seq < read.firstSeq - 1) {
    gap = { stream, from: seq + 1, to: read.firstSeq - 1 };
    seq = read.firstSeq - 1;
  }
  let messages: string[] = [];
  let nextBytes: number | undefined;
  if (seq < read.lastSeq && limit > 0) {
    const start = seq - read.after;
    const held = read.messages.length;
    // Right at the end of a read its byte bound stopped: nothing fits, and the read says so exactly.
    if (start < 0 || start > held || (start === held && read.nextBytes === undefined)) return { reread: seq };
    messages = read.messages.slice(start, start + limit);
    if (start + messages.length === held) nextBytes = read.nextBytes;
  }
  const delivery: StreamDelivery = { stream, messages, position: { epoch: read.epoch, seq: seq + messages.length } };
  if (gap) delivery.gap = gap;
  if (reset) delivery.reset = true;
  if (delivery.position.seq < read.lastSeq) delivery.more = true;
  if (nextBytes !== undefined) delivery.nextBytes = nextBytes;
  return delivery;
}

/**
 * Reads one stream for a position within `share` (the store's byte bound is strict: a delivery
 * may hold no message and say how big the next one is), re-reading once when the first snapshot
 * did not cover the position. A given snapshot is used as is: makeBatch trims it to a budget.
 */
export async function deliverStream(store: Store, stream: string, pos: Position, share: Budget, first?: StreamRead): Promise<StreamDelivery> {
  const limit = Math.min(share.limit, MAX_READ);
  let read = first ?? (await store.read(stream, pos.seq, limit, share.bytes));
  for (let attempt = 0; ; attempt++) {
    const r = resolve(pos, read, share.limit);
    if (!('reread' in r)) return r;
    if (attempt >= 2) return { stream, messages: [], position: pos };
    read = await store.read(stream, r.reread, limit, share.bytes);
  }
}

/** Where a client without a cursor entry for a stream starts: at the head, or the oldest retained. */
export type Since = 'now' | 'earliest';

/** Position of a client that starts on a stream now (`since` now) or at its oldest message. */
export async function startPosition(store: Store, stream: string, since: Since): Promise<Position> {
  const head = await store.read(stream, HEAD_ONLY, 0);
  if (head.epoch === '') return NO_POSITION;
  return { epoch: head.epoch, seq: since === 'now' ? head.lastSeq : head.firstSeq - 1 };
}

export interface Batch {
  deliveries: StreamDelivery[];
  /** Every polled stream's position after this batch, in poll order. */
  positions: Map<string, Position>;
  count: number;
}

/** Bytes of the messages of these deliveries (messageBytes). */
export function messagesBytes(deliveries: readonly StreamDelivery[]): number {
  let bytes = 0;
  for (const d of deliveries) for (const m of d.messages) bytes += messageBytes(m);
  return bytes;
}

export function hasNews(batch: Batch): boolean {
  return batch.count > 0 || batch.deliveries.some((d) => d.gap || d.reset);
}

/**
 * Builds a batch from per-stream deliveries: trims them to `budget` in total (fitBudget) and
 * moves positions only past the messages kept, so the cursor says exactly where the answer
 * stopped. Streams without a delivery keep their position. When no position moved (a poll with
 * nothing new), the batch's positions are `positions` itself, not a copy.
 */
export function makeBatch(positions: Map<string, Position>, deliveries: StreamDelivery[], budget: Budget): Batch {
  const counts = fitBudget(deliveries.map((d) => d.messages), budget);
  let next: Map<string, Position> | undefined;
  let count = 0;
  const kept = deliveries.map((d, i) => {
    const n = counts[i]!;
    const dropped = d.messages.length - n;
    let out = d;
    if (dropped > 0) {
      // Built field by field, not `{ ...d, more: true }` and a delete: see parsePollParams (routes/poll.ts).
      out = { stream: d.stream, messages: d.messages.slice(0, n), position: { epoch: d.position.epoch, seq: d.position.seq - dropped }, more: true };
      if (d.gap) out.gap = d.gap;
      if (d.reset) out.reset = d.reset;
    }
    const was = positions.get(d.stream);
    if (!next && (was?.seq !== out.position.seq || was.epoch !== out.position.epoch)) next = new Map(positions);
    next?.set(d.stream, out.position);
    count += n;
    return out;
  });
  return { deliveries: kept, positions: next ?? positions, count };
}

/** Reads every stream of a poll within one budget (readStreams) and returns what the client gets now. */
export async function readBatch(store: Store, positions: Map<string, Position>, budget: Budget): Promise<Batch> {
  return makeBatch(positions, await readStreams(store, positions, budget), budget);
}

/** Reads of one stream for one answer: a first share, then up to two more of what the others left. */
const ROUNDS = 3;

/** One stream of a shared read: where it is now and what it has delivered so far. */
interface Part {
  stream: string;
  pos: Position;
  got?: StreamDelivery;
  open: boolean;
  /** Size of its next message once a read said (0: not known). */
  next: number;
}

/**
 * Reads streams for one answer within one budget, never reading more messages or bytes than the
 * answer can carry: a poll of 50 streams reads one budget from the store, not 50 (issue 23). Each
 * round splits what is left between the streams that may have more (splitBudget) and reads them
 * in parallel; a stream is read again only when the others left budget unused. When nothing at
 * all fits and `alone` is set, the smallest next message goes alone. Deliveries come back in the
 * order of `positions`, at most one per stream.
 */
export async function readStreams(store: Store, positions: ReadonlyMap<string, Position>, budget: Budget, alone = true): Promise<StreamDelivery[]> {
  // Most polls name one stream: no rounds for it.
  if (positions.size === 1) {
    const [stream, pos] = positions.entries().next().value!;
    const d = await deliverStream(store, stream, pos, budget);
    if (!alone || d.messages.length > 0 || d.nextBytes === undefined) return [d];
    return [extend(d, await deliverStream(store, stream, d.position, { limit: 1, bytes: d.nextBytes }))];
  }
  const parts: Part[] = [...positions].map(([stream, pos]) => ({ stream, pos, open: true, next: 0 }));
  const left = { limit: budget.limit, bytes: budget.bytes };
  for (let round = 0; round < ROUNDS && left.limit > 0 && left.bytes > 0; round++) {
    const shares = splitBudget(parts.filter((p) => p.open), left);
    if (shares.length === 0) break;
    const reads = await Promise.all(shares.map(([p, share]) => deliverStream(store, p.stream, p.pos, share)));
    reads.forEach((d, i) => {
      if (!take(shares[i]![0], d)) return;
      left.bytes -= messagesBytes([d]);
      left.limit -= d.messages.length;
    });
  }
  if (alone && parts.every((p) => !p.got?.messages.length)) {
    const waiting = parts.filter((p) => p.open && p.next > 0).sort((a, b) => a.next - b.next)[0];
    if (waiting) take(waiting, await deliverStream(store, waiting.stream, waiting.pos, { limit: 1, bytes: waiting.next }));
  }
  return parts.flatMap((p) => (p.got ? [p.got] : []));
}

/** Adds a read's delivery to what a part delivered so far; false when extend() dropped it. */
function take(p: Part, d: StreamDelivery): boolean {
  const merged = p.got ? extend(p.got, d) : d;
  if (merged === p.got) {
    p.open = false;
    return false;
  }
  p.got = merged;
  p.pos = merged.position;
  p.open = merged.more === true;
  p.next = merged.nextBytes ?? 0;
  return true;
}

/**
 * `first` followed by `then`, a read from where `first` stopped; `first` itself when `then`
 * found a gap or a reset (the stream moved under the answer: the next answer reports it).
 */
function extend(first: StreamDelivery, then: StreamDelivery): StreamDelivery {
  if (then.gap || then.reset) return first;
  // Field by field, not a spread and deletes (a delete turns the object into a dictionary): see
  // parsePollParams (routes/poll.ts).
  const out: StreamDelivery = { stream: first.stream, messages: [...first.messages, ...then.messages], position: then.position };
  if (first.gap) out.gap = first.gap;
  if (first.reset) out.reset = first.reset;
  if (then.more) out.more = true;
  if (then.nextBytes !== undefined) out.nextBytes = then.nextBytes;
  return out;
}
