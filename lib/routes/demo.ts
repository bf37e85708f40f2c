/**
 * GET /demo/token?sub=<name>: a short-lived client token for the demo page, for anyone who asks.
 * It may poll `room:*` and `user:<sub>` and send to `room:*`. Served only when auth.demoToken is
 * on (lib/config.ts: by default only with self-generated credentials), always with a warning.
 */
import type { Context } from 'koa';
import type { Auth } from '../auth.js';
import type { Config } from '../config.js';
import { BadRequestError } from '../errors.js';
import { queryParams } from '../http/params.js';
import { noStore } from '../http/request-log.js';
import type { Logger } from '../log.js';

const SUBJECT = /^[A-Za-z0-9_-]{1,64}$/;

export function demoTokenRoute(deps: { auth: Auth; ttlSeconds: number }) {
  return async function demoToken(ctx: Context): Promise<void> {
    noStore(ctx);
    const sub = queryParams(ctx).sub;
    if (typeof sub !== 'string' || !SUBJECT.test(sub)) throw new BadRequestError('sub must be 1-64 characters of A-Z a-z 0-9 _ -');
    const streams = ['room:*', `user:${sub}`];
    const pub = ['room:*'];
    const token = await deps.auth.mintToken({ sub, streams, pub, ttlSeconds: deps.ttlSeconds });
    ctx.body = { token, sub, streams, pub, expiresIn: deps.ttlSeconds };
  };
}

/** The one start-up line that says /demo/token is served (lib/server.ts and createGateway() log it). */
export function announceDemoToken(config: Config, log: Logger): void {
  if (!config.auth.demoToken) return;
  const path = `${config.mount === '/' ? '' : config.mount}/demo/token`;
  log.warn(`${path} is on: it gives anyone a token for any subject (auth.demoToken); configure auth.secret and auth.apiKeys or set auth.demoToken false`);
}
