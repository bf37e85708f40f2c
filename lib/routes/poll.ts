/**
 * GET|POST /poll: rate limit -> validate -> authorise -> resolve positions -> long-poll (within the
 * parked-poll caps) -> answer.
 * Always 200 with `{"messages","cursor","gaps"?,"resets"?}` (never 204: old IE reads it as 1223).
 */
import type { Context } from 'koa';
import type { Auth } from '../auth.js';
import type { CursorCodec } from '../cursor.js';
import { BadRequestError } from '../errors.js';
import type { LaterAnswers } from '../http/answer-later.js';
import { readJsonBody, type BodyLimits } from '../http/body.js';
import { clientIp } from '../http/client-ip.js';
import { credentialFrom } from '../http/credentials.js';
import { assertCallbackName, jsonpBody } from '../http/jsonp.js';
import { queryParams, single, streamsParam } from '../http/params.js';
import { noStore } from '../http/request-log.js';
import type { RateLimits } from '../limits/rate-limits.js';
import { CONN_ID } from '../streams.js';
import { parseSubscription, type Subscription, type Subscriptions } from '../subscriptions.js';
import type { LongPolls, PollOutcome, PollRequest } from '../transports/long-poll.js';
import { batchJson } from '../wire.js';
import type { Batch } from '../delivery.js';
import type { Metrics } from '../metrics.js';
import { requestHeader, setBody, setHeader } from '../http/headers.js';

export interface PollLimits {
  defaultTimeoutSeconds: number;
  maxTimeoutSeconds: number;
  defaultLimit: number;
  maxLimit: number;
  maxStreams: number;
}

/** A poll's parameters: the subscription, and how long and how much to answer. */
export interface PollParams extends Subscription {
  timeoutMs: number;
  limit: number;
  conn?: string;
}

function numberParam(value: unknown, name: string, min: number, max: number, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\d+(\.\d+)?$/.test(value) ? Number(value) : NaN;
  if (!Number.isFinite(n) || n < min || n > max) throw new BadRequestError(`${name} must be a number from ${min} to ${max}`);
  return n;
}

/** Validates poll parameters from a query string or a JSON body; throws BadRequestError. */
export function parsePollParams(params: Record<string, unknown>, limits: PollLimits, fromQuery: boolean): PollParams {
  const sub = parseSubscription({ streams: streamsParam(params, fromQuery), cursor: single(params, 'cursor'), since: single(params, 'since') }, limits.maxStreams);
  const timeoutMs = Math.round(numberParam(single(params, 'timeout'), 'timeout', 0, limits.maxTimeoutSeconds, limits.defaultTimeoutSeconds) * 1000);
  const limit = Math.floor(numberParam(single(params, 'limit'), 'limit', 1, limits.maxLimit, limits.defaultLimit));
  const conn = single(params, 'conn');
  if (conn !== undefined && conn !== '' && (typeof conn !== 'string' || !CONN_ID.test(conn))) {
    throw new BadRequestError('conn must be 1-64 characters of A-Z a-z 0-9 _ -');
  }
  // One literal naming every field, not `{ ...sub, timeoutMs, limit }`: V8 gives a spread's copy a
  // hidden class of its own, outside any transition tree, so each field added after it made two new
  // hidden classes (and their descriptor arrays, in the old generation) for every poll
  // (docs/PERFORMANCE.md, "Hidden classes made per poll").
  return { streams: sub.streams, cursor: sub.cursor, since: sub.since, timeoutMs, limit, conn: conn === '' ? undefined : (conn as string | undefined) };
}

export interface PollDeps {
  auth: Auth;
  cursors: CursorCodec;
  subscriptions: Subscriptions;
  longPolls: LongPolls;
  rateLimits: RateLimits;
  limits: PollLimits;
  body: BodyLimits;
  jsonp: boolean;
  trustProxyHops: number;
  later: LaterAnswers;
  metrics?: Metrics;
}

export function pollRoute(deps: PollDeps) {
  const render = answerRenderer(deps.cursors);
  /**
   * Validates and authorises the poll and resolves its positions (what the long-poll needs), then
   * polls: the answer now, or the poll parked and answered when it ends. One async function for
   * both halves: the first as an async function of its own cost every poll a second frame,
   * promise and await (docs/PERFORMANCE.md, "A poll in one async function").
   */
  return async function poll(ctx: Context): Promise<void> {
    // koa-router serves HEAD with the GET route: it carries its parameters in the query too.
    const fromQuery = ctx.method !== 'POST';
    const query = queryParams(ctx);
    if (query.transport === 'xdr') ctx.state.errorsAs200 = true;
    if (fromQuery && query.callback !== undefined) {
      if (!deps.jsonp) throw new BadRequestError('JSONP is disabled on this gateway');
      ctx.state.jsonpCallback = assertCallbackName(single(query, 'callback'));
    }
    const ip = clientIp(ctx.req, deps.trustProxyHops);
    // A returning poller's steps answer at once, without a promise (the rate check with no limit
    // set, a token seen before, a cursor naming every stream): each `await` would cost one.
    // Before any token is verified or the store read: a flood costs the least here.
    const limited = deps.rateLimits.checkPoll(ip);
    if (limited) await limited;
    const raw = fromQuery ? query : await readJsonBody(ctx, deps.body);
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new BadRequestError('body must be a JSON object');
    const params = raw as Record<string, unknown>;
    const authenticating = deps.auth.authenticate(credentialFrom(requestHeader(ctx, 'authorization'), single(params, 'token')));
    const principal = authenticating instanceof Promise ? await authenticating : authenticating;
    const p = parsePollParams(params, deps.limits, fromQuery);
    const allowed = deps.subscriptions.authorize(principal, p.streams, 'poll');
    if (allowed) await allowed;
    const positions = deps.subscriptions.positions(p);
    const request: PollRequest = {
      positions: positions instanceof Promise ? await positions : positions,
      limit: p.limit,
      timeoutMs: p.timeoutMs,
      admit: deps.subscriptions.admission(principal, ip),
      response: ctx.res,
      session: { subject: principal.subject, conn: p.conn, issuedAt: principal.issuedAt },
    };
    // A caught-up poller parks without a promise (LongPolls.poll); an `await` would cost one.
    const polled = deps.longPolls.poll(request);
    const now = polled instanceof Promise ? await polled : polled;
    if (!('whenDone' in now)) return answer(ctx, deps, now, render);
    // Parked: the route returns now, and the answer is written when the poll ends.
    deps.later.defer(ctx);
    now.whenDone((outcome) => deps.later.finish(ctx, () => answer(ctx, deps, outcome, render)));
  };
}

/**
 * A batch's JSON with its signed cursor, rendered once for answers in a row with the same batch:
 * the polls of a broadcast parked at the same position share one batch (SharedAnswer in
 * transports/long-poll.ts), so thousands of answers cost one rendering. Batches are immutable.
 */
export function answerRenderer(cursors: Pick<CursorCodec, 'encode'>): (batch: Batch) => string {
  let last: Batch | undefined;
  let json = '';
  return (batch) => {
    if (batch !== last) {
      json = batchJson(batch, cursors.encode(batch.positions));
      last = batch;
    }
    return json;
  };
}

/** `{"messages","cursor",...}`, or the JSONP call carrying it. */
function answer(ctx: Context, deps: PollDeps, outcome: PollOutcome, render: (batch: Batch) => string): void {
  // Set with the answer, not before the poll parks: a parked poll holds every header set so far.
  noStore(ctx);
  ctx.state.pollEnd = outcome.end;
  // POST /disconnect: a 403, rendered like any route's error.
  if (outcome.error) throw outcome.error;
  deps.metrics?.delivered('poll', outcome.batch);
  if (outcome.end === 'shutdown') setHeader(ctx, 'connection', 'close');
  const json = render(outcome.batch);
  if (ctx.state.jsonpCallback) setBody(ctx, 'application/javascript; charset=utf-8', jsonpBody(ctx.state.jsonpCallback, json));
  else setBody(ctx, 'application/json; charset=utf-8', json);
}
