/**
 * POST /disconnect {"sub":"bob","revoke"?:true} (API keys only): ends every connection of subject
 * bob on every node (lib/disconnect.ts) and, with revoke, refuses its tokens issued until now.
 * Answers `{"sub","connections","revokedUntil"?}`: connections ended on this node (the others end
 * theirs when they hear of it, within a re-check at most).
 */
import type { Context } from 'koa';
import type { Auth } from '../auth.js';
import type { Disconnects } from '../disconnect.js';
import { BadRequestError, ForbiddenError } from '../errors.js';
import { readJsonBody, type BodyLimits } from '../http/body.js';
import { credentialFrom } from '../http/credentials.js';
import { requestHeader } from '../http/headers.js';
import { noStore } from '../http/request-log.js';

export interface DisconnectRouteDeps {
  auth: Auth;
  disconnects: Disconnects;
  body: BodyLimits;
}

export function disconnectRoute(deps: DisconnectRouteDeps) {
  return async function disconnect(ctx: Context): Promise<void> {
    noStore(ctx);
    const principal = await deps.auth.authenticate(credentialFrom(requestHeader(ctx, 'authorization'), undefined));
    if (principal.kind !== 'server') throw new ForbiddenError('disconnect needs an API key');
    const body = (await readJsonBody(ctx, deps.body)) as { sub?: unknown; revoke?: unknown } | null;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new BadRequestError('body must be a JSON object');
    const { sub, revoke } = body;
    if (typeof sub !== 'string' || sub.length === 0 || sub.length > 200) throw new BadRequestError('sub must be a subject: a string of 1-200 characters');
    if (revoke !== undefined && typeof revoke !== 'boolean') throw new BadRequestError('revoke must be true or false');
    ctx.body = await deps.disconnects.disconnect(sub, revoke === true);
  };
}
