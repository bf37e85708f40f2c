/**
 * GET /presence?stream=S: who reads S now, on every node (lib/presence.ts):
 * `{"stream":"S","subjects":[{"sub":"alice","connections":2}],"count":1}`. An API key, or a token
 * that may read S. A stream outside presence.streams is a 400 (its presence is not kept).
 */
import type { Context } from 'koa';
import type { Auth } from '../auth.js';
import { BadRequestError } from '../errors.js';
import { clientIp } from '../http/client-ip.js';
import { credentialFrom } from '../http/credentials.js';
import { requestHeader } from '../http/headers.js';
import { queryParams, single } from '../http/params.js';
import { noStore } from '../http/request-log.js';
import type { Presence } from '../presence.js';
import { assertStreamName } from '../streams.js';
import type { Subscriptions } from '../subscriptions.js';
import type { RateLimits } from '../limits/rate-limits.js';

export interface PresenceRouteDeps {
  auth: Auth;
  /** A read like a poll: the same per-IP rate (rateLimits.pollsPerIpPerSecond), checked first. */
  rateLimits: RateLimits;
  trustProxyHops: number;
  presence: Presence;
  subscriptions: Subscriptions;
}

export function presenceRoute(deps: PresenceRouteDeps) {
  return async function presence(ctx: Context): Promise<void> {
    noStore(ctx);
    const query = queryParams(ctx);
    if (query.transport === 'xdr') ctx.state.errorsAs200 = true;
    await deps.rateLimits.checkPoll(clientIp(ctx.req, deps.trustProxyHops));
    const principal = await deps.auth.authenticate(credentialFrom(requestHeader(ctx, 'authorization'), single(query, 'token')));
    const stream = assertStreamName(single(query, 'stream'));
    await deps.subscriptions.authorize(principal, [stream], 'http');
    if (!deps.presence.isTracked(stream)) throw new BadRequestError(`presence is not kept for stream "${stream}" (presence.streams)`);
    ctx.body = await deps.presence.list(stream);
  };
}
