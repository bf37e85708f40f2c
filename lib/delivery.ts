/**
 * What a client at a position receives from a stream: the one delivery contract shared by every
 * transport (long-poll, SSE, WebSocket). Positions move only past messages actually handed out;
 * a cursor older than the retained log is a reported gap, a changed epoch a reported reset.
 */
import { NO_POSITION, type Position } from './cursor.js';
import { HEAD_ONLY, MAX_READ, type Store, type StreamRead } from './store/store.js';

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
}

/** The outcome of applying a read to a position; `reread` asks for a read after that seq. */
export type Resolution = StreamDelivery | { reread: number };

/**
 * Applies a snapshot of a stream to a client's position. Pure: the same inputs, the same answer.
 * - no log: nothing, or a reset if the client had seen messages of a log that is now gone;
 * - another epoch: reset, then the new log from its oldest retained message;
 * - same epoch but the client is ahead of the log (writes lost in a Redis crash): reset at the head;
 * - behind the oldest retained message: a gap, then the retained messages.
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
  if (seq < read.lastSeq && limit > 0) {
    const start = seq - read.after;
    if (start < 0 || start >= read.messages.length) return { reread: seq };
    messages = read.messages.slice(start, start + limit);
  }
  const delivery: StreamDelivery = { stream, messages, position: { epoch: read.epoch, seq: seq + messages.length } };
  if (gap) delivery.gap = gap;
  if (reset) delivery.reset = true;
  return delivery;
}

/** Reads one stream for a position, re-reading once when the first snapshot did not cover it. */
export async function deliverStream(store: Store, stream: string, pos: Position, limit: number, first?: StreamRead): Promise<StreamDelivery> {
  let read = first ?? (await store.read(stream, pos.seq, Math.min(limit, MAX_READ)));
  for (let attempt = 0; ; attempt++) {
    const r = resolve(pos, read, limit);
    if (!('reread' in r)) return r;
    if (attempt >= 2) return { stream, messages: [], position: pos };
    read = await store.read(stream, r.reread, Math.min(limit, MAX_READ));
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

export function hasNews(batch: Batch): boolean {
  return batch.count > 0 || batch.deliveries.some((d) => d.gap || d.reset);
}

/**
 * Splits `limit` fairly between streams (water-filling): small streams take what they have,
 * the rest share what is left, so one busy stream cannot starve the others.
 */
export function shareLimit(available: number[], limit: number): number[] {
  const shares = available.map(() => 0);
  let left = limit;
  const order = available.map((n, i) => i).sort((a, b) => available[a]! - available[b]!);
  order.forEach((idx, k) => {
    const fair = Math.floor(left / (order.length - k));
    shares[idx] = Math.min(available[idx]!, Math.max(fair, 0));
    left -= shares[idx]!;
  });
  return shares;
}

/**
 * Builds a batch from per-stream deliveries: trims them to `limit` in total and moves positions
 * only past the messages kept. Streams without a delivery keep their position. When no position
 * moved (a poll with nothing new), the batch's positions are `positions` itself, not a copy.
 */
export function makeBatch(positions: Map<string, Position>, deliveries: StreamDelivery[], limit: number): Batch {
  // Most polls name one stream: its share is the whole limit.
  const shares = deliveries.length === 1 ? undefined : shareLimit(deliveries.map((d) => d.messages.length), limit);
  let next: Map<string, Position> | undefined;
  let count = 0;
  const kept = deliveries.map((d, i) => {
    const n = shares ? shares[i]! : Math.min(d.messages.length, Math.max(Math.floor(limit), 0));
    const dropped = d.messages.length - n;
    const out: StreamDelivery = dropped > 0 ? { ...d, messages: d.messages.slice(0, n), position: { ...d.position, seq: d.position.seq - dropped } } : d;
    const was = positions.get(d.stream);
    if (!next && (was?.seq !== out.position.seq || was.epoch !== out.position.epoch)) next = new Map(positions);
    next?.set(d.stream, out.position);
    count += n;
    return out;
  });
  return { deliveries: kept, positions: next ?? positions, count };
}

/** Reads every stream of a poll once and returns what the client gets now. */
export async function readBatch(store: Store, positions: Map<string, Position>, limit: number): Promise<Batch> {
  // Most polls name one stream: no Promise.all and no arrays for it.
  if (positions.size === 1) {
    const stream: string = positions.keys().next().value!;
    return makeBatch(positions, [await deliverStream(store, stream, positions.get(stream)!, limit)], limit);
  }
  const deliveries = await Promise.all([...positions].map(([stream, pos]) => deliverStream(store, stream, pos, limit)));
  return makeBatch(positions, deliveries, limit);
}
