/**
 * Request ids, the access log line (tokens redacted) and headers every answer carries.
 */
import { randomBytes } from 'node:crypto';
import type { Context } from 'koa';
import { redactUrl, type Logger } from '../log.js';
import { requestHeader, setHeader } from './headers.js';
import type { StepNext } from './steps.js';

const REQUEST_ID = /^[A-Za-z0-9_.:-]{1,128}$/;

/**
 * Request ids this process generates: UUID-shaped (8-4-4-4-12 hex), an 80-bit random prefix drawn
 * once per process and a 48-bit counter. Unique, which is all a log correlation id needs; not
 * secret. randomUUID() cost a random draw and built the id from 14 joined pieces that a parked
 * poll held for its whole hold (docs/PERFORMANCE.md).
 */
const ID_PREFIX = randomBytes(10).toString('hex').replace(/^(.{8})(.{4})(.{4})(.{4})$/, '$1-$2-$3-$4-');
let idCounter = 0;

export function newRequestId(): string {
  idCounter = (idCounter + 1) % 2 ** 48;
  return ID_PREFIX + idCounter.toString(16).padStart(12, '0');
}

/**
 * Gives the request its id; logs one line per request at info. `ctx.state.log` is the logger for
 * this request (log with `reqId: ctx.state.requestId`). The id goes on the answer with
 * requestHeaders, when the answer's head is written (lib/http/answer-head.ts).
 */
export function requestLog(log: Logger) {
  return function logRequest(ctx: Context, next: StepNext): unknown {
    const given = requestHeader(ctx, 'x-request-id');
    ctx.state.requestId = REQUEST_ID.test(given) ? given : newRequestId();
    // The root logger, not a child bound to the id: a child (or a lazy getter for one) per request
    // was a visible share of a small request's CPU; whoever logs adds `reqId` itself.
    ctx.state.log = log;
    // Below info, a request costs no clock read, no listener and no closure.
    if (log.isLevelEnabled('info')) logWhenClosed(ctx, log, ctx.state.requestId as string);
    return next(ctx);
  };
}

/** An answer-head rule: the request id, and the headers every answer carries for the browser's sake. */
export function requestHeaders(ctx: Context): void {
  setHeader(ctx, 'x-request-id', ctx.state.requestId as string);
  setHeader(ctx, 'x-content-type-options', 'nosniff');
  setHeader(ctx, 'referrer-policy', 'no-referrer');
}

/** One line once the response closes, however the request ended (a parked poll answers after its middleware returned). */
function logWhenClosed(ctx: Context, log: Logger, id: string): void {
  const started = process.hrtime.bigint();
  const { res, method, originalUrl } = ctx;
  res.once('close', () => {
    const ms = Math.round(Number(process.hrtime.bigint() - started) / 1e5) / 10;
    const answered = res.writableFinished;
    const write = () => log.info({ reqId: id, method, url: redactUrl(originalUrl), status: answered ? res.statusCode : 499, ms, end: ctx.state.pollEnd }, 'request');
    // A client that left: this listener runs before a parked poll's own, which records how it ended.
    if (answered) write();
    else setImmediate(write);
  });
}

/**
 * Answers that must never be cached, by a browser (old IE caches GET XHR) or a proxy. Pragma and
 * Expires are for the caches that ignore Cache-Control (HTTP/1.0 proxies, old IE), and those cache
 * only what a GET or HEAD fetched: an answer to a POST (a send, say) goes without them, two
 * headers fewer to set and write on every send (docs/PERFORMANCE.md, "No HTTP/1.0 cache headers
 * on a POST").
 */
export function noStore(ctx: Context): void {
  setHeader(ctx, 'cache-control', 'no-cache, no-store, must-revalidate');
  // The method on the wire, which is what caches see (a host's method override rewrites ctx.method).
  const method = ctx.req.method;
  if (method !== 'GET' && method !== 'HEAD') return;
  setHeader(ctx, 'pragma', 'no-cache');
  setHeader(ctx, 'expires', '0');
}
