/**
 * CORS by exact allowlist. An allowed Origin is echoed; any other gets no CORS headers (the browser
 * then refuses to hand the answer to the page). `Origin: null` never matches. Credentials are never
 * allowed: auth travels in the Authorization header or a token parameter, not cookies.
 */
import type { Context, Next } from 'koa';

export interface CorsOptions {
  origins: readonly string[];
  maxAgeSeconds: number;
}

export function cors(options: CorsOptions) {
  const allowed = new Set(options.origins);
  return function corsHeaders(ctx: Context, next: Next): Promise<void> {
    ctx.vary('Origin');
    const origin = ctx.get('origin');
    if (!origin || !allowed.has(origin)) return next();
    ctx.set('Access-Control-Allow-Origin', origin);
    if (ctx.method === 'OPTIONS' && ctx.get('access-control-request-method')) {
      // A preflight is answered here, for every path of the gateway.
      ctx.set('Access-Control-Allow-Methods', 'GET, POST, OPTIONS');
      ctx.set('Access-Control-Allow-Headers', 'Authorization, Content-Type');
      ctx.set('Access-Control-Max-Age', String(options.maxAgeSeconds));
      ctx.status = 204;
      return Promise.resolve();
    }
    ctx.set('Access-Control-Expose-Headers', 'Retry-After, X-Request-Id');
    return next();
  };
}
