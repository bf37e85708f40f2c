/**
 * POST /send: authenticate -> validate -> authorise -> rate limit -> append -> answer. Answers
 * 200 only once the store confirmed every append. Accepts one message (`stream` or `streams`), or a batch (`messages`).
 */
import { nanoid } from 'nanoid';
import type { Auth } from '../auth.js';
import { BadRequestError, ForbiddenError, PayloadTooLargeError } from '../errors.js';
import { readJsonBody } from '../http/body.js';
import { credentialOf } from '../http/credentials.js';
import { noStore } from '../http/request-log.js';
import type { RateLimits } from '../limits/rate-limits.js';
import { MESSAGE_ID, assertStreamName, parseStreamList } from '../streams.js';
import { messageTail, type AppendResult, type NewMessage, type Store } from '../store/store.js';
import type { HttpExchange } from '../http/exchange.js';

export interface SendLimits {
  bodyBytes: number;
  bodyTimeoutMs: number;
  dataBytes: number;
  batchSize: number;
  streamsPerSend: number;
}

export interface Outgoing {
  streams: string[];
  id: string;
  dataJson: string;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Validates one message to send (shared with the WebSocket send frame); throws BadRequestError or PayloadTooLargeError. */
export function parseMessage(raw: unknown, limits: SendLimits, where: string): Outgoing {
  if (!isObject(raw)) throw new BadRequestError(`${where} must be a JSON object`);
  const hasOne = raw.stream !== undefined;
  const hasMany = raw.streams !== undefined;
  if (hasOne === hasMany) throw new BadRequestError(`${where} needs exactly one of "stream" or "streams"`);
  const streams = hasOne ? [assertStreamName(raw.stream, `${where}.stream`)] : parseStreamList(raw.streams, limits.streamsPerSend, `${where}.streams`);
  if (!('data' in raw) || raw.data === undefined) throw new BadRequestError(`${where}.data is required (any JSON value)`);
  let id: string;
  if (raw.id === undefined) id = nanoid();
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
  return { streams, id, dataJson };
}

function parseSend(body: unknown, limits: SendLimits): Outgoing[] {
  if (!isObject(body)) throw new BadRequestError('body must be a JSON object');
  if (body.messages === undefined) return [parseMessage(body, limits, 'message')];
  if (!Array.isArray(body.messages) || body.messages.length === 0) throw new BadRequestError('messages must be a non-empty array');
  if (body.messages.length > limits.batchSize) throw new BadRequestError(`messages may hold at most ${limits.batchSize} messages`);
  return body.messages.map((m, i) => parseMessage(m, limits, `messages[${i}]`));
}

/** One atomic append per stream, in request order; the results come back in request order. */
async function appendAll(store: Store, outgoing: Outgoing[], ts: number): Promise<AppendResult[]> {
  const only = outgoing.length === 1 && outgoing[0]!.streams.length === 1 ? outgoing[0]! : undefined;
  // Most sends carry one message to one stream: no grouping to do.
  if (only) return store.append(only.streams[0]!, [{ id: only.id, tail: messageTail(only.id, ts, only.dataJson) }]);
  const perStream = new Map<string, { messages: NewMessage[]; slots: number[] }>();
  const results: AppendResult[] = [];
  for (const m of outgoing) {
    const tail = messageTail(m.id, ts, m.dataJson);
    for (const stream of m.streams) {
      let group = perStream.get(stream);
      if (!group) perStream.set(stream, (group = { messages: [], slots: [] }));
      group.messages.push({ id: m.id, tail });
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

export function sendRoute(deps: { store: Store; auth: Auth; limits: SendLimits; rateLimits: RateLimits }) {
  return async function send(ctx: HttpExchange): Promise<void> {
    noStore(ctx);
    // XDomainRequest cannot read the body of a non-2xx answer; its clients ask for errors as 200.
    if (ctx.query.transport === 'xdr') ctx.state.errorsAs200 = true;
    const body = await readJsonBody(ctx, deps.limits.bodyBytes, deps.limits.bodyTimeoutMs);
    const principal = await deps.auth.authenticate(credentialOf(ctx, isObject(body) ? body.token : undefined));
    const outgoing = parseSend(body, deps.limits);
    for (const m of outgoing) {
      for (const s of m.streams) if (!principal.canWrite(s)) throw new ForbiddenError(`not allowed to send to stream "${s}"`);
    }
    // Counted per append, not per request: one request may fan out to thousands of new streams.
    await deps.rateLimits.checkSend(principal, outgoing.reduce((n, m) => n + m.streams.length, 0));

    const results = await appendAll(deps.store, outgoing, Date.now());
    ctx.type = 'application/json; charset=utf-8';
    // Stream names and ids are from JSON-safe grammars (lib/streams.ts): joined, not serialized.
    let json = '';
    for (const r of results) {
      const item = `{"stream":"${r.stream}","seq":${JSON.stringify(r.seq)},"id":"${r.id}"${r.duplicate ? ',"duplicate":true' : ''}}`;
      json = json === '' ? item : `${json},${item}`;
    }
    ctx.body = `{"results":[${json}]}`;
  };
}
