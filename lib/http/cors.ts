/**
 * CORS by exact allowlist. An allowed Origin is echoed; any other gets no CORS headers (the browser
 * then refuses to hand the answer to the page). `Origin: null` never matches. Credentials are never
 * allowed: auth travels in the Authorization header or a token parameter, not cookies.
 */
import type { Context } from 'koa';
import { answerHeader, requestHeader, setHeader } from './headers.js';
import type { StepNext } from './steps.js';

export interface CorsOptions {
  origins: readonly string[];
  maxAgeSeconds: number;
}

/** Adds Origin to Vary (an answer depends on it: a cache must not give one origin's answer to another). */
function vary(ctx: Context): void {
  const prev = answerHeader(ctx, 'vary');
  setHeader(ctx, 'vary', prev ? `${prev}, Origin` : 'Origin');
}

function isPreflight(ctx: Context): boolean {
  return ctx.method === 'OPTIONS' && requestHeader(ctx, 'access-control-request-method') !== '';
}

export class Cors {
  private readonly allowed: ReadonlySet<string>;

  constructor(private readonly options: CorsOptions) {
    this.allowed = new Set(options.origins);
  }

  private allows(ctx: Context): string | undefined {
    const origin = requestHeader(ctx, 'origin');
    return origin && this.allowed.has(origin) ? origin : undefined;
  }

  /** Answers an allowed origin's preflight, for every path of the gateway; the rest go on. */
  preflight() {
    return (ctx: Context, next: StepNext): unknown => {
      if (!isPreflight(ctx) || !this.allows(ctx)) return next(ctx);
      setHeader(ctx, 'access-control-allow-methods', 'GET, POST, OPTIONS');
      setHeader(ctx, 'access-control-allow-headers', 'Authorization, Content-Type');
      setHeader(ctx, 'access-control-max-age', String(this.options.maxAgeSeconds));
      ctx.status = 204;
      return undefined;
    };
  }

  /** An answer-head rule (lib/http/answer-head.ts): Vary on every answer, the rest for an allowed origin. */
  readonly answerHeaders = (ctx: Context): void => {
    vary(ctx);
    const origin = this.allows(ctx);
    if (!origin) return;
    setHeader(ctx, 'access-control-allow-origin', origin);
    if (!isPreflight(ctx)) setHeader(ctx, 'access-control-expose-headers', 'Retry-After, X-Request-Id');
  };
}
