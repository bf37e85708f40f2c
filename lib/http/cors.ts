/**
 * CORS by exact allowlist. An allowed Origin is echoed; any other gets no CORS headers (the browser
 * then refuses to hand the answer to the page). `Origin: null` never matches. Credentials are never
 * allowed: auth travels in the Authorization header or a token parameter, not cookies.
 */
import type { Context, Next } from 'koa';
import type { HttpExchange } from './exchange.js';

export interface CorsOptions {
  origins: readonly string[];
  maxAgeSeconds: number;
}

export function cors(options: CorsOptions) {
  const allowCors = corsRule(options);
  return async function corsHeaders(ctx: Context, next: Next): Promise<void> {
    if (allowCors(ctx)) return next();
  };
}

/**
 * The rule on its own: sets the CORS headers of an answer and returns false when it answered a
 * preflight itself (204), true when the request goes on. The fast path calls it directly.
 */
export function corsRule(options: CorsOptions): (ex: HttpExchange) => boolean {
  const allowed = new Set(options.origins);
  return (ex) => {
    ex.vary('Origin');
    const origin = ex.get('origin');
    if (!origin || !allowed.has(origin)) return true;
    ex.set('Access-Control-Allow-Origin', origin);
    if (ex.method === 'OPTIONS' && ex.get('access-control-request-method')) {
      ex.set('Access-Control-Allow-Methods', 'GET, POST, OPTIONS');
      ex.set('Access-Control-Allow-Headers', 'Authorization, Content-Type');
      ex.set('Access-Control-Max-Age', String(options.maxAgeSeconds));
      ex.status = 204;
      return false;
    }
    ex.set('Access-Control-Expose-Headers', 'Retry-After, X-Request-Id');
    return true;
  };
}
