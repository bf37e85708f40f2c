/**
 * CORS by exact allowlist. An allowed Origin is echoed; any other gets no CORS headers (the browser
 * then refuses to hand the answer to the page). `Origin: null` never matches. Credentials are never
 * allowed: auth travels in the Authorization header or a token parameter, not cookies.
 */
import type { Context, Next } from 'koa';
import { requestHeader, setHeader } from './headers.js';

export interface CorsOptions {
  origins: readonly string[];
  maxAgeSeconds: number;
}

/** Adds Origin to Vary (an answer depends on it: a cache must not give one origin's answer to another). */
function vary(ctx: Context): void {
  const prev = ctx.res.getHeader('vary');
  setHeader(ctx, 'vary', prev ? `${String(prev)}, Origin` : 'Origin');
}

export function cors(options: CorsOptions) {
  const allowed = new Set(options.origins);
  return function corsHeaders(ctx: Context, next: Next): Promise<void> {
    vary(ctx);
    const origin = requestHeader(ctx, 'origin');
    if (!origin || !allowed.has(origin)) return next();
    setHeader(ctx, 'access-control-allow-origin', origin);
    if (ctx.method === 'OPTIONS' && requestHeader(ctx, 'access-control-request-method')) {
      // A preflight is answered here, for every path of the gateway.
      setHeader(ctx, 'access-control-allow-methods', 'GET, POST, OPTIONS');
      setHeader(ctx, 'access-control-allow-headers', 'Authorization, Content-Type');
      setHeader(ctx, 'access-control-max-age', String(options.maxAgeSeconds));
      ctx.status = 204;
      return Promise.resolve();
    }
    setHeader(ctx, 'access-control-expose-headers', 'Retry-After, X-Request-Id');
    return next();
  };
}
