/**
 * POST /send: read -> authenticate -> validate -> publish (authorise, rate limit, append: lib/messages.ts)
 * -> answer. Answers 200 only once the store confirmed every append. Accepts one message (`stream`
 * or `streams`), or a batch (`messages`).
 */
import type { Context } from 'koa';
import type { Auth } from '../auth.js';
import { readJsonBody, type BodyLimits } from '../http/body.js';
import { queryParams } from '../http/params.js';
import { credentialFrom } from '../http/credentials.js';
import { noStore } from '../http/request-log.js';
import type { Messages } from '../messages.js';
import { requestHeader, setHeader } from '../http/headers.js';

export interface SendDeps {
  auth: Auth;
  messages: Messages;
  body: BodyLimits;
}

export function sendRoute(deps: SendDeps) {
  return async function send(ctx: Context): Promise<void> {
    noStore(ctx);
    // XDomainRequest cannot read the body of a non-2xx answer; its clients ask for errors as 200.
    if (queryParams(ctx).transport === 'xdr') ctx.state.errorsAs200 = true;
    const body = await readJsonBody(ctx, deps.body);
    const token = typeof body === 'object' && body !== null ? (body as { token?: unknown }).token : undefined;
    // A key or token seen before is answered without a promise; an `await` would cost one.
    const authenticating = deps.auth.authenticate(credentialFrom(requestHeader(ctx, 'authorization'), token));
    const principal = authenticating instanceof Promise ? await authenticating : authenticating;
    const publishing = deps.messages.publish(principal, deps.messages.parseBody(body));
    const results = publishing instanceof Promise ? await publishing : publishing;
    setHeader(ctx, 'content-type', 'application/json; charset=utf-8');
    // Stream names and ids are from JSON-safe grammars (lib/streams.ts): joined, not serialized.
    let json = '';
    for (const r of results) {
      const item = `{"stream":"${r.stream}","seq":${JSON.stringify(r.seq)},"id":"${r.id}"${r.duplicate ? ',"duplicate":true' : ''}}`;
      json = json === '' ? item : `${json},${item}`;
    }
    ctx.body = `{"results":[${json}]}`;
  };
}
