/**
 * GET|POST /poll: rate limit -> validate -> authorise -> resolve positions -> long-poll (within the
 * parked-poll caps) -> answer.
 * Always 200 with `{"messages","cursor","gaps"?,"resets"?}` (never 204: old IE reads it as 1223).
 */
import type { Auth } from '../auth.js';
import type { CursorCodec, Position } from '../cursor.js';
import { startPosition, type Since } from '../delivery.js';
import { BadRequestError, ForbiddenError } from '../errors.js';
import { readJsonBody } from '../http/body.js';
import { credentialOf } from '../http/credentials.js';
import { assertCallbackName, jsonpBody } from '../http/jsonp.js';
import { noStore } from '../http/request-log.js';
import type { ConnectionCaps } from '../limits/connection-caps.js';
import type { RateLimits } from '../limits/rate-limits.js';
import { CONN_ID, parseStreamList } from '../streams.js';
import type { Store } from '../store/store.js';
import type { LongPolls, PollOutcome, PollRequest } from '../transports/long-poll.js';
import { batchJson } from '../wire.js';
import type { HttpExchange } from '../http/exchange.js';

export interface PollLimits {
  defaultTimeoutSeconds: number;
  maxTimeoutSeconds: number;
  defaultLimit: number;
  maxLimit: number;
  maxStreams: number;
}

export interface PollParams {
  streams: string[];
  cursor?: string;
  since: Since;
  timeoutMs: number;
  limit: number;
  conn?: string;
}

function single(params: Record<string, unknown>, name: string): unknown {
  const v = params[name];
  if (Array.isArray(v) && name !== 'streams') throw new BadRequestError(`${name} may be given only once`);
  return v;
}

function numberParam(value: unknown, name: string, min: number, max: number, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\d+(\.\d+)?$/.test(value) ? Number(value) : NaN;
  if (!Number.isFinite(n) || n < min || n > max) throw new BadRequestError(`${name} must be a number from ${min} to ${max}`);
  return n;
}

/** Validates poll parameters from a query string or a JSON body; throws BadRequestError. */
export function parsePollParams(params: Record<string, unknown>, limits: PollLimits, fromQuery: boolean): PollParams {
  let streams = single(params, 'streams');
  if (fromQuery && Array.isArray(streams)) streams = streams.join(',');
  const out: PollParams = {
    streams: parseStreamList(streams, limits.maxStreams),
    since: 'now',
    timeoutMs: Math.round(numberParam(single(params, 'timeout'), 'timeout', 0, limits.maxTimeoutSeconds, limits.defaultTimeoutSeconds) * 1000),
    limit: Math.floor(numberParam(single(params, 'limit'), 'limit', 1, limits.maxLimit, limits.defaultLimit)),
  };
  const cursor = single(params, 'cursor');
  if (cursor !== undefined && cursor !== '') {
    if (typeof cursor !== 'string') throw new BadRequestError('cursor must be a string');
    out.cursor = cursor;
  }
  const since = single(params, 'since');
  if (since !== undefined && since !== '') {
    if (since !== 'earliest' && since !== 'now') throw new BadRequestError('since must be "earliest" or "now"');
    out.since = since;
  }
  const conn = single(params, 'conn');
  if (conn !== undefined && conn !== '') {
    if (typeof conn !== 'string' || !CONN_ID.test(conn)) throw new BadRequestError('conn must be 1-64 characters of A-Z a-z 0-9 _ -');
    out.conn = conn;
  }
  return out;
}

export interface PollDeps {
  store: Store;
  auth: Auth;
  cursors: CursorCodec;
  longPolls: LongPolls;
  limits: PollLimits;
  bodyBytes: number;
  bodyTimeoutMs: number;
  jsonp: boolean;
  rateLimits: RateLimits;
  caps: ConnectionCaps;
}

export function pollRoute(deps: PollDeps) {
  // Three steps, so that on the Koa path what a parked poll keeps suspended is this small frame,
  // not the frame that validated the request (docs/PERFORMANCE.md, "What a parked poll holds").
  return async function poll(ctx: HttpExchange): Promise<void> {
    const request = await pollRequest(ctx, deps);
    const now = await deps.longPolls.poll(request);
    if (!('whenDone' in now)) return answer(ctx, deps, now);
    // The fast path lets the route return while parked: nothing is suspended for the hold.
    const later = ctx.answerLater?.();
    if (later) now.whenDone((outcome) => later.answer(() => answer(ctx, deps, outcome)));
    else answer(ctx, deps, await now.outcome);
  };
}

/** Validates and authorises a poll and resolves its positions: what the long-poll needs. */
async function pollRequest(ctx: HttpExchange, deps: PollDeps): Promise<PollRequest> {
  noStore(ctx);
  // koa-router serves HEAD with the GET route: it carries its parameters in the query too.
  const fromQuery = ctx.method !== 'POST';
  const query = ctx.query as Record<string, unknown>;
  if (query.transport === 'xdr') ctx.state.errorsAs200 = true;
  if (fromQuery && query.callback !== undefined) {
    if (!deps.jsonp) throw new BadRequestError('JSONP is disabled on this gateway');
    ctx.state.jsonpCallback = assertCallbackName(single(query, 'callback'));
  }
  // Before any token is verified or the store read: a flood costs the least here.
  await deps.rateLimits.checkPoll(ctx.ip);
  const raw = fromQuery ? query : await readJsonBody(ctx, deps.bodyBytes, deps.bodyTimeoutMs);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new BadRequestError('body must be a JSON object');
  const params = raw as Record<string, unknown>;
  const principal = await deps.auth.authenticate(credentialOf(ctx, single(params, 'token')));
  const p = parsePollParams(params, deps.limits, fromQuery);
  for (const s of p.streams) if (!principal.canRead(s)) throw new ForbiddenError(`not allowed to poll stream "${s}"`);
  return {
    positions: await positionsOf(deps, p),
    limit: p.limit,
    timeoutMs: p.timeoutMs,
    connKey: p.conn ? `${principal.subject}\u0000${p.conn}` : undefined,
    admit: { caps: deps.caps, holder: { subject: principal.kind === 'client' ? principal.subject : undefined, ip: ctx.ip } },
    response: ctx.res,
  };
}

/** `{"messages","cursor",...}`, or the JSONP call carrying it. */
function answer(ctx: HttpExchange, deps: PollDeps, outcome: PollOutcome): void {
  ctx.state.pollEnd = outcome.end;
  if (outcome.end === 'shutdown') ctx.set('Connection', 'close');
  const json = batchJson(outcome.batch, deps.cursors.encode(outcome.batch.positions));
  if (ctx.state.jsonpCallback) {
    ctx.type = 'application/javascript; charset=utf-8';
    ctx.body = jsonpBody(ctx.state.jsonpCallback, json);
  } else {
    ctx.type = 'application/json; charset=utf-8';
    ctx.body = json;
  }
}

/**
 * The cursor's positions, with streams it does not mention starting now or at their oldest message.
 * Shared by /poll, /sse and WebSocket subscribe. Throws InvalidCursorError, or store errors.
 */
export async function positionsOf(
  deps: Pick<PollDeps, 'store' | 'cursors'>,
  p: Pick<PollParams, 'streams' | 'cursor' | 'since'>,
): Promise<Map<string, Position>> {
  const known = p.cursor ? deps.cursors.decode(p.cursor, p.streams) : new Map<string, Position>();
  // A returning client's cursor names every stream it polls: nothing to look up in the store.
  if (known.size === p.streams.length) return known;
  const entries = await Promise.all(
    p.streams.map(async (s): Promise<[string, Position]> => [s, known.get(s) ?? (await startPosition(deps.store, s, p.since))]),
  );
  return new Map(entries);
}
