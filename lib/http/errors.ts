/**
 * Error rendering: any error a route throws becomes `{"error":{"code","message"}}` with the
 * status, Retry-After and Allow of toWire() (lib/errors.ts); anything unexpected is a generic
 * 500, logged with the request id and stack. Never a stack trace in a response. The pipeline
 * renders through wayOut (lib/http/way-out.ts), a parked poll's later answer through LaterAnswers.
 */
import type { Context } from 'koa';
import { errorBody, toWire } from '../errors.js';
import { jsonpBody } from './jsonp.js';
import { noStore } from './request-log.js';
import { setBody, setHeader } from './headers.js';
import type { Metrics } from '../metrics.js';

/** Turns any thrown value into the answer (a parked poll's later answer calls it too). */
export function renderError(ctx: Context, err: unknown): void {
  const wire = toWire(err);
  if (wire.unexpected) ctx.state.log?.error({ err, reqId: ctx.state.requestId }, 'unexpected error');
  (ctx.state.metrics as Metrics | undefined)?.refused(wire);
  noStore(ctx);
  if (wire.retryAfter !== undefined) setHeader(ctx, 'retry-after', String(wire.retryAfter));
  if (wire.allow) setHeader(ctx, 'allow', wire.allow.join(', '));
  ctx.state.errorCode = wire.code;
  const body = errorBody(wire);
  if (ctx.state.jsonpCallback) {
    // A script tag cannot read a status: JSONP callers get errors in the callback's argument.
    setBody(ctx, 'application/javascript; charset=utf-8', jsonpBody(ctx.state.jsonpCallback, body), 200);
    return;
  }
  // XDomainRequest cannot read the body of a non-2xx answer; its clients ask for errors as 200.
  setBody(ctx, 'application/json; charset=utf-8', body, ctx.state.errorsAs200 ? 200 : wire.status);
}
