/**
 * GET /history?stream=S&last=N: the last N retained messages of S, oldest first, with a cursor that
 * continues after the last one (hand it to /poll, /sse or a WebSocket subscribe). An API key, or a
 * token that may read S (and, with a hook, is allowed to). N is 1..poll.maxLimit; the answer holds
 * at most limits.answerBytes of messages, and when that cuts it short the cursor says where it
 * stopped, so the next poll brings the rest. Reads the store twice: the head, then the range.
 */
import type { Context } from 'koa';
import type { Auth } from '../auth.js';
import { NO_POSITION, type CursorCodec } from '../cursor.js';
import { BadRequestError } from '../errors.js';
import { clientIp } from '../http/client-ip.js';
import { credentialFrom } from '../http/credentials.js';
import { requestHeader, setHeader } from '../http/headers.js';
import { queryParams, single } from '../http/params.js';
import { noStore } from '../http/request-log.js';
import { HEAD_ONLY, type Store } from '../store/store.js';
import { assertStreamName } from '../streams.js';
import type { Subscriptions } from '../subscriptions.js';
import type { RateLimits } from '../limits/rate-limits.js';

export interface HistoryDeps {
  auth: Auth;
  /** A read like a poll: the same per-IP rate (rateLimits.pollsPerIpPerSecond), checked first. */
  rateLimits: RateLimits;
  trustProxyHops: number;
  store: Store;
  cursors: CursorCodec;
  subscriptions: Subscriptions;
  maxLimit: number;
  answerBytes: number;
}

/** The `last` parameter: a whole number from 1 to max. */
function lastParam(value: unknown, max: number): number {
  const n = typeof value === 'string' && /^\d{1,7}$/.test(value) ? Number(value) : NaN;
  if (!(n >= 1 && n <= max)) throw new BadRequestError(`last must be a whole number from 1 to ${max}`);
  return n;
}

export function historyRoute(deps: HistoryDeps) {
  return async function history(ctx: Context): Promise<void> {
    noStore(ctx);
    const query = queryParams(ctx);
    if (query.transport === 'xdr') ctx.state.errorsAs200 = true;
    await deps.rateLimits.checkPoll(clientIp(ctx.req, deps.trustProxyHops));
    const principal = await deps.auth.authenticate(credentialFrom(requestHeader(ctx, 'authorization'), single(query, 'token')));
    const stream = assertStreamName(single(query, 'stream'));
    const last = lastParam(single(query, 'last'), deps.maxLimit);
    await deps.subscriptions.authorize(principal, [stream], 'http');
    const head = await deps.store.read(stream, HEAD_ONLY, 0);
    const read = head.epoch === '' ? head : await deps.store.read(stream, Math.max(head.lastSeq - last, head.firstSeq - 1), last, deps.answerBytes);
    const position = read.epoch === '' ? NO_POSITION : { epoch: read.epoch, seq: read.after + read.messages.length };
    setHeader(ctx, 'content-type', 'application/json; charset=utf-8');
    // Stored messages are JSON already, cursors base64url: joined, not serialized.
    ctx.body = `{"stream":${JSON.stringify(stream)},"messages":[${read.messages.join(',')}],"cursor":"${deps.cursors.encode(new Map([[stream, position]]))}"}`;
  };
}
