/**
 * Where a credential comes from: the Authorization header (preferred), else a `token` parameter in
 * the query or body, for transports that cannot set headers (XDomainRequest, JSONP, EventSource,
 * the browser WebSocket).
 */
import { UnauthorizedError } from '../errors.js';
import type { HttpExchange } from './exchange.js';

export function credentialOf(ctx: HttpExchange, tokenParam: unknown): string | undefined {
  return credentialFrom(ctx.get('authorization'), tokenParam);
}

/** The same rule on a raw Authorization header value (WebSocket upgrades never reach Koa). */
export function credentialFrom(authorization: string | undefined, tokenParam: unknown): string | undefined {
  if (authorization) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!match) throw new UnauthorizedError('Authorization must be "Bearer <token or API key>"');
    return match[1];
  }
  if (tokenParam === undefined || tokenParam === '') return undefined;
  if (typeof tokenParam !== 'string') throw new UnauthorizedError('token must be a string');
  return tokenParam;
}
