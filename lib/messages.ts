/**
 * What a message may be, and how it is published, for every transport (POST /send and the
 * WebSocket send frame): the shape and size of a message, write permission, the send rate limits
 * (per client subject and per API key, shared across nodes on Redis), then one atomic append per
 * stream. A WebSocket send costs the same as an HTTP send.
 */
import { nanoid } from 'nanoid';
import type { Principal } from './auth.js';
import { BadRequestError, ForbiddenError, PayloadTooLargeError } from './errors.js';
import type { Hooks, PublishedMessage } from './hooks.js';
import type { RateLimits } from './limits/rate-limits.js';
import type { Metrics } from './metrics.js';
import { MESSAGE_ID, assertStreamName, parseStreamList } from './streams.js';
import { SERVER_SENDER, messageTail, type AppendResult, type NewMessage, type Store } from './store/store.js';

export interface MessageLimits {
  /** Serialized `data` of one message, in bytes. */
  dataBytes: number;
  /** Messages in one /send batch. */
  batchSize: number;
  /** Streams one message may go to. */
  streamsPerSend: number;
}

/** A validated message, with its data serialized once. */
export interface Outgoing {
  streams: string[];
  id: string;
  /** The send named no id and the gateway made this one: not a key any retry can use (retryKey). */
  idMadeHere: boolean;
  dataJson: string;
}

export interface MessagesDeps {
  store: Store;
  limits: MessageLimits;
  rateLimits: RateLimits;
  /** The application's say on writes, and onPublish (lib/hooks.ts). */
  hooks?: Hooks;
  metrics?: Metrics;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export class Messages {
  constructor(private readonly deps: MessagesDeps) {}

  /**
   * Validates one message (`where` names it in errors); `fanOut: false` allows only `stream`.
   * Throws BadRequestError or PayloadTooLargeError.
   */
  parse(raw: unknown, where: string, fanOut = true): Outgoing {
    const limits = this.deps.limits;
    if (!isObject(raw)) throw new BadRequestError(`${where} must be a JSON object`);
    const hasOne = raw.stream !== undefined;
    const hasMany = raw.streams !== undefined;
    if (hasMany && !fanOut) throw new BadRequestError(`${where} names one "stream" (use POST /send to fan out)`);
    if (hasOne === hasMany) throw new BadRequestError(`${where} needs exactly one of "stream" or "streams"`);
    const streams = hasOne ? [assertStreamName(raw.stream, `${where}.stream`)] : parseStreamList(raw.streams, limits.streamsPerSend, `${where}.streams`);
    if (!('data' in raw) || raw.data === undefined) throw new BadRequestError(`${where}.data is required (any JSON value)`);
    let id: string;
    const idMadeHere = raw.id === undefined;
    if (idMadeHere) id = nanoid();
    else if (typeof raw.id === 'string' && MESSAGE_ID.test(raw.id)) id = raw.id;
    else throw new BadRequestError(`${where}.id must be 1-64 characters of A-Z a-z 0-9 _ -`);
    let dataJson: string;
    try {
      dataJson = JSON.stringify(raw.data);
    } catch {
      throw new BadRequestError(`${where}.data cannot be serialized`);
    }
    if (Buffer.byteLength(dataJson) > limits.dataBytes) {
      throw new PayloadTooLargeError(`${where}.data exceeds ${limits.dataBytes} bytes`);
    }
    return { streams, id, idMadeHere, dataJson };
  }

  /** A /send body: one message (`stream` or `streams`), or a batch (`messages`). */
  parseBody(body: unknown): Outgoing[] {
    if (!isObject(body)) throw new BadRequestError('body must be a JSON object');
    if (body.messages === undefined) return [this.parse(body, 'message')];
    const { batchSize } = this.deps.limits;
    if (!Array.isArray(body.messages) || body.messages.length === 0) throw new BadRequestError('messages must be a non-empty array');
    if (body.messages.length > batchSize) throw new BadRequestError(`messages may hold at most ${batchSize} messages`);
    return body.messages.map((m, i) => this.parse(m, `messages[${i}]`));
  }

  /**
   * Checks write permission and the sender's rate, then appends; resolves, in request order,
   * once the store confirmed every append. Ids are the sender's own: every API key shares one
   * server scope, each client subject has its own (idempotencyKey in store.ts). Throws
   * ForbiddenError, RateLimitedError (429), a BadRequestError for a request larger than a whole
   * second's rate, or store errors, always as a rejection.
   *
   * Answers at once, with the results and no promise, when nothing on the way waits: no hook to
   * ask, no rate to wait for, a store that appends at once (the memory store). As an async
   * function it cost every send its promise and its frame, and the caller's `await` one more
   * (docs/PERFORMANCE.md, "A send answered without promises").
   */
  publish(principal: Principal, outgoing: readonly Outgoing[], transport: 'http' | 'ws' = 'http'): AppendResult[] | Promise<AppendResult[]> {
    try {
      for (const m of outgoing) {
        for (const s of m.streams) if (!principal.canWrite(s)) throw new ForbiddenError(`not allowed to send to stream "${s}"`);
      }
      const { hooks } = this.deps;
      // Only an answer not yet remembered is awaited (Hooks.assertAllowed).
      const asking = hooks?.active && principal.kind === 'client' ? hooks.assertAllowed(principal, [...new Set(outgoing.flatMap((m) => m.streams))], 'write', transport) : undefined;
      if (asking) return asking.then(() => this.publishAllowed(principal, outgoing, transport));
      return this.publishAllowed(principal, outgoing, transport);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** publish, once the writes are allowed: the sender's rate, then the appends. */
  private publishAllowed(principal: Principal, outgoing: readonly Outgoing[], transport: 'http' | 'ws'): AppendResult[] | Promise<AppendResult[]> {
    const appends = outgoing.reduce((n, m) => n + m.streams.length, 0);
    // Counted per append, not per request: one request may fan out to thousands of new streams.
    const limited = this.deps.rateLimits.checkSend(principal, appends);
    if (limited) return limited.then(() => this.append(principal, outgoing, transport, appends));
    return this.append(principal, outgoing, transport, appends);
  }

  private append(principal: Principal, outgoing: readonly Outgoing[], transport: 'http' | 'ws', appends: number): AppendResult[] | Promise<AppendResult[]> {
    const started = Date.now();
    // The memory store appends without a promise (Store.append).
    const appending = appendAll(this.deps.store, outgoing, senderOf(principal), started);
    if (appending instanceof Promise) return appending.then((results) => this.appended(principal, outgoing, transport, appends, started, results));
    return this.appended(principal, outgoing, transport, appends, started, appending);
  }

  private appended(principal: Principal, outgoing: readonly Outgoing[], transport: 'http' | 'ws', appends: number, started: number, results: AppendResult[]): AppendResult[] {
    this.deps.metrics?.sent(transport, appends, Date.now() - started);
    this.deps.hooks?.published(() => publishedMessages(principal, outgoing, results, transport));
    return results;
  }
}

/** What onPublish is told: each stored message, duplicates left out. */
function publishedMessages(principal: Principal, outgoing: readonly Outgoing[], results: readonly AppendResult[], transport: 'http' | 'ws'): PublishedMessage[] {
  const out: PublishedMessage[] = [];
  let i = 0;
  for (const m of outgoing) {
    const data: unknown = JSON.parse(m.dataJson);
    for (const stream of m.streams) {
      const r = results[i++]!;
      if (!r.duplicate) out.push({ stream, seq: r.seq, id: r.id, subject: principal.subject, data, transport });
    }
  }
  return out;
}

/** The idempotency scope of a principal's ids: a client must never be able to claim a backend's id. */
function senderOf(principal: Principal): string {
  return principal.kind === 'server' ? SERVER_SENDER : principal.subject;
}

/**
 * One atomic append per stream, in request order; the results come back in request order. Most
 * sends carry one message to one stream: that one is the store's own answer (at once from the
 * memory store), with no grouping to do.
 */
function appendAll(store: Store, outgoing: readonly Outgoing[], sender: string, ts: number): AppendResult[] | Promise<AppendResult[]> {
  const only = outgoing.length === 1 && outgoing[0]!.streams.length === 1 ? outgoing[0]! : undefined;
  if (only) return store.append(only.streams[0]!, [{ id: only.id, sender, tail: messageTail(only.id, ts, only.dataJson), idMadeHere: only.idMadeHere }]);
  return appendGrouped(store, outgoing, sender, ts);
}

/** appendAll for a batch or a fan-out: one append per stream, all at once. */
async function appendGrouped(store: Store, outgoing: readonly Outgoing[], sender: string, ts: number): Promise<AppendResult[]> {
  const perStream = new Map<string, { messages: NewMessage[]; slots: number[] }>();
  const results: AppendResult[] = [];
  for (const m of outgoing) {
    const tail = messageTail(m.id, ts, m.dataJson);
    for (const stream of m.streams) {
      let group = perStream.get(stream);
      if (!group) perStream.set(stream, (group = { messages: [], slots: [] }));
      group.messages.push({ id: m.id, sender, tail, idMadeHere: m.idMadeHere });
      group.slots.push(results.length);
      results.push({ stream, seq: 0, id: m.id, duplicate: false });
    }
  }
  await Promise.all(
    [...perStream].map(async ([stream, group]) => {
      const stored = await store.append(stream, group.messages);
      stored.forEach((r, i) => (results[group.slots[i]!] = r));
    }),
  );
  return results;
}
