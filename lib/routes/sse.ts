/**
 * GET /sse?streams=..&token=..&cursor=..&since=..: rate limit -> validate -> authorise -> resolve
 * positions -> take a connection slot -> hand the response to the SSE transport. Until the
 * hand-over every failure is an ordinary JSON error answer (rendered by lib/http/errors.ts); after
 * it neither Koa nor the fast path touches the response.
 * A Last-Event-ID header (the browser's automatic reconnect) wins over the cursor parameter, which
 * the browser repeats unchanged on every reconnect.
 */
import type { Auth } from '../auth.js';
import type { CursorCodec } from '../cursor.js';
import { BadRequestError, ForbiddenError } from '../errors.js';
import { credentialOf } from '../http/credentials.js';
import { takeOver, type HttpExchange } from '../http/exchange.js';
import type { ConnectionCaps } from '../limits/connection-caps.js';
import type { RateLimits } from '../limits/rate-limits.js';
import { parseStreamList } from '../streams.js';
import type { Store } from '../store/store.js';
import type { SseHub } from '../transports/sse.js';
import { positionsOf } from './poll.js';

export interface SseRouteDeps {
  rateLimits: RateLimits;
  /** Open streams per subject, IP and process, shared with parked polls and WebSockets. */
  caps: ConnectionCaps;
  store: Store;
  auth: Auth;
  cursors: CursorCodec;
  sse: SseHub;
  maxStreams: number;
  retryMs: number;
}

function single(query: Record<string, unknown>, name: string): string | undefined {
  const v = query[name];
  if (Array.isArray(v)) throw new BadRequestError(`${name} may be given only once`);
  return typeof v === 'string' && v !== '' ? v : undefined;
}

export function sseRoute(deps: SseRouteDeps) {
  return async function sse(ctx: HttpExchange): Promise<void> {
    const query = ctx.query as Record<string, unknown>;
    await deps.rateLimits.checkPoll(ctx.ip);
    const principal = await deps.auth.authenticate(credentialOf(ctx, single(query, 'token')));
    const raw = Array.isArray(query.streams) ? query.streams.join(',') : query.streams;
    const streams = parseStreamList(raw, deps.maxStreams);
    for (const s of streams) if (!principal.canRead(s)) throw new ForbiddenError(`not allowed to read stream "${s}"`);
    const since = single(query, 'since') ?? 'now';
    if (since !== 'now' && since !== 'earliest') throw new BadRequestError('since must be "earliest" or "now"');
    const cursor = ctx.get('last-event-id') || single(query, 'cursor');
    const positions = await positionsOf(deps, { streams, cursor, since });
    if (ctx.method === 'HEAD') {
      // koa-router routes HEAD to GET handlers; a HEAD has no body, so there is no stream to hold open.
      ctx.type = 'text/event-stream; charset=utf-8';
      ctx.status = 200;
      return;
    }
    if (deps.sse.isDraining) {
      // Not a 503: EventSource never retries a non-200 answer. An empty stream makes it reconnect,
      // and Connection: close makes that a new connection, to a node that is not draining.
      ctx.set('Connection', 'close');
      ctx.set('Cache-Control', 'no-store');
      ctx.type = 'text/event-stream; charset=utf-8';
      ctx.body = `retry: ${deps.retryMs}\n\n`;
      ctx.state.pollEnd = 'shutdown';
      return;
    }

    // Over a cap this is still an ordinary JSON 429/503 (EventSource gives up on it; the client falls back).
    const slot = deps.caps.acquire({ subject: principal.kind === 'client' ? principal.subject : undefined, ip: ctx.ip });
    ctx.status = 200;
    takeOver(ctx);
    deps.sse.open(ctx.res, positions, (end) => {
      slot.release();
      ctx.state.pollEnd = end;
    });
  };
}
