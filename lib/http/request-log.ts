/**
 * Request ids, the access log line (tokens redacted) and headers every answer carries.
 */
import { randomUUID } from 'node:crypto';
import type { Context, Next } from 'koa';
import { redactUrl, type Logger } from '../log.js';

const REQUEST_ID = /^[A-Za-z0-9_.:-]{1,128}$/;

/**
 * Sets the request id and common headers; logs one line per request at info. `ctx.state.log` is
 * a child logger bound to the request id, built only when something logs through it: a pino
 * child per request was a visible share of a small request's CPU (docs/PERFORMANCE.md).
 */
export function requestLog(log: Logger) {
  return async function logRequest(ctx: Context, next: Next): Promise<void> {
    const given = ctx.get('x-request-id');
    const id = REQUEST_ID.test(given) ? given : randomUUID();
    ctx.state.requestId = id;
    let child: Logger | undefined;
    Object.defineProperty(ctx.state, 'log', { configurable: true, get: () => (child ??= log.child({ reqId: id })) });
    ctx.set('X-Request-Id', id);
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('Referrer-Policy', 'no-referrer');
    // Below info, a request costs no clock read, no listener and no closure.
    if (log.isLevelEnabled('info')) {
      const started = process.hrtime.bigint();
      ctx.res.once('close', () => {
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        log.info(
          { reqId: id, method: ctx.method, url: redactUrl(ctx.originalUrl), status: ctx.res.writableFinished ? ctx.status : 499, ms: Math.round(ms * 10) / 10, end: ctx.state.pollEnd },
          'request',
        );
      });
    }
    await next();
  };
}

/** Answers that must never be cached, by a browser (old IE caches GET XHR) or a proxy. */
export function noStore(ctx: Context): void {
  ctx.set('Cache-Control', 'no-cache, no-store, must-revalidate');
  ctx.set('Pragma', 'no-cache');
  ctx.set('Expires', '0');
}
