/**
 * GET /sse?streams=..&token=..&cursor=..&since=..: rate limit -> authenticate -> the subscription
 * (lib/subscriptions.ts) -> take a connection slot -> hand the response to the SSE transport. Until
 * the hand-over every failure is an ordinary JSON error answer; after it Koa keeps off the response.
 * A Last-Event-ID header (the browser's automatic reconnect) wins over the cursor parameter, which
 * the browser repeats unchanged on every reconnect.
 */
import type { Context } from 'koa';
import type { Auth } from '../auth.js';
import { clientIp } from '../http/client-ip.js';
import { credentialFrom } from '../http/credentials.js';
import { queryParams, single, streamsParam } from '../http/params.js';
import type { RateLimits } from '../limits/rate-limits.js';
import type { Subscriptions } from '../subscriptions.js';
import type { SseHub } from '../transports/sse.js';
import type { HeadRule } from '../http/answer-head.js';
import { requestHeader, setHeader } from '../http/headers.js';

export interface SseRouteDeps {
  auth: Auth;
  subscriptions: Subscriptions;
  rateLimits: RateLimits;
  sse: SseHub;
  maxStreams: number;
  retryMs: number;
  trustProxyHops: number;
  /** The answer-head rules (lib/http/answer-head.ts): the stream's head is written here, not by Koa. */
  answerHead: HeadRule;
}

export function sseRoute(deps: SseRouteDeps) {
  return async function sse(ctx: Context): Promise<void> {
    const query = queryParams(ctx);
    const ip = clientIp(ctx.req, deps.trustProxyHops);
    await deps.rateLimits.checkPoll(ip);
    const principal = await deps.auth.authenticate(credentialFrom(requestHeader(ctx, 'authorization'), single(query, 'token')));
    const cursor = requestHeader(ctx, 'last-event-id') || single(query, 'cursor');
    const positions = await deps.subscriptions.open(principal, { streams: streamsParam(query, true), cursor, since: single(query, 'since') }, deps.maxStreams, 'sse');
    if (ctx.method === 'HEAD') {
      // koa-router routes HEAD to GET handlers; a HEAD has no body, so there is no stream to hold open.
      ctx.type = 'text/event-stream; charset=utf-8';
      ctx.status = 200;
      return;
    }
    if (deps.sse.isDraining) {
      // Not a 503: EventSource never retries a non-200 answer. An empty stream makes it reconnect,
      // and Connection: close makes that a new connection, to a node that is not draining.
      setHeader(ctx, 'connection', 'close');
      setHeader(ctx, 'cache-control', 'no-store');
      ctx.type = 'text/event-stream; charset=utf-8';
      ctx.body = `retry: ${deps.retryMs}\n\n`;
      ctx.state.pollEnd = 'shutdown';
      return;
    }
    // Over a cap this is still an ordinary JSON 429/503 (EventSource gives up on it; the client falls back).
    const slot = deps.subscriptions.acquire(principal, ip);
    // Koa keeps off from here on: the answer's common headers (request id, CORS) go on now.
    deps.answerHead(ctx);
    ctx.respond = false;
    deps.sse.open(ctx.res, positions, principal, (end) => {
      slot.release();
      ctx.state.pollEnd = end;
    });
  };
}
