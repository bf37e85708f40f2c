/**
 * GET /demo/token?sub=<name>: a short-lived client token for the demo page (development only).
 * It may poll `room:*` and `user:<sub>` and send to `room:*`.
 */
import type { Context } from 'koa';
import type { Auth } from '../auth.js';
import { BadRequestError } from '../errors.js';
import { noStore } from '../http/request-log.js';

const SUBJECT = /^[A-Za-z0-9_-]{1,64}$/;

export function demoTokenRoute(deps: { auth: Auth; ttlSeconds: number }) {
  return async function demoToken(ctx: Context): Promise<void> {
    noStore(ctx);
    const sub = ctx.query.sub;
    if (typeof sub !== 'string' || !SUBJECT.test(sub)) throw new BadRequestError('sub must be 1-64 characters of A-Z a-z 0-9 _ -');
    const streams = ['room:*', `user:${sub}`];
    const pub = ['room:*'];
    const token = await deps.auth.mintToken({ sub, streams, pub, ttlSeconds: deps.ttlSeconds });
    ctx.body = { token, sub, streams, pub, expiresIn: deps.ttlSeconds };
  };
}
