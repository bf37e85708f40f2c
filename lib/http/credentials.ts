/**
 * Where a credential comes from: the Authorization header (preferred), else a `token` parameter in
 * the query or body, for transports that cannot set headers (XDomainRequest, JSONP, EventSource,
 * the browser WebSocket).
 */
import { UnauthorizedError } from '../errors.js';

const BEARER = /^Bearer\s+(\S+)\s*$/i;

/** The credential of a request; throws UnauthorizedError for a malformed header or parameter. */
export function credentialFrom(authorization: string | undefined, tokenParam: unknown): string | undefined {
  if (authorization) {
    const match = BEARER.exec(authorization);
    if (!match) throw new UnauthorizedError('Authorization must be "Bearer <token or API key>"');
    return match[1];
  }
  if (tokenParam === undefined || tokenParam === '') return undefined;
  if (typeof tokenParam !== 'string') throw new UnauthorizedError('token must be a string');
  return tokenParam;
}
