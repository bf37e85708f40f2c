/**
 * The only place errors become HTTP responses: `{"error":{"code","message"}}` with the status of
 * the typed error, Retry-After when it has one, and a generic 500 (logged with the request id and
 * stack) for anything unexpected. Never a stack trace in a response.
 */
import type { Context, Next } from 'koa';
import { GatewayError, MethodNotAllowedError } from '../errors.js';
import type { HttpExchange } from './exchange.js';
import { jsonpBody } from './jsonp.js';
import { noStore } from './request-log.js';

export function errorBody(code: string, message: string): string {
  return JSON.stringify({ error: { code, message } });
}

export function errorHandler() {
  return async function handleErrors(ctx: Context, next: Next): Promise<void> {
    try {
      await next();
    } catch (err) {
      renderError(ctx, err);
    }
  };
}

/** Turns any thrown value into the answer (the fast path calls it directly). */
export function renderError(ctx: HttpExchange, err: unknown): void {
  noStore(ctx);
  let status = 500;
  let code = 'internal';
  let message = 'internal error';
  if (err instanceof GatewayError && err.expose) {
    ({ status, code, message } = err);
    if (err.retryAfter !== undefined) ctx.set('Retry-After', String(Math.ceil(err.retryAfter)));
    if (err instanceof MethodNotAllowedError) ctx.set('Allow', err.allow.join(', '));
  } else if (isClientHttpError(err)) {
    // Errors raised by Koa itself for malformed requests (e.g. a bad URL encoding).
    status = err.status;
    code = 'bad_request';
    message = 'malformed request';
  } else {
    ctx.state.log?.error({ err, reqId: ctx.state.requestId }, 'unexpected error');
  }
  ctx.state.errorCode = code;
  const body = errorBody(code, message);
  if (ctx.state.jsonpCallback) {
    // A script tag cannot read a status: JSONP callers get errors in the callback's argument.
    ctx.status = 200;
    ctx.type = 'application/javascript; charset=utf-8';
    ctx.body = jsonpBody(ctx.state.jsonpCallback, body);
    return;
  }
  // XDomainRequest cannot read the body of a non-2xx answer; its clients ask for errors as 200.
  ctx.status = ctx.state.errorsAs200 ? 200 : status;
  ctx.type = 'application/json; charset=utf-8';
  ctx.body = body;
}

function isClientHttpError(err: unknown): err is { status: number } {
  const status = (err as { status?: unknown })?.status;
  return typeof status === 'number' && status >= 400 && status < 500 && (err as { expose?: boolean }).expose === true;
}
