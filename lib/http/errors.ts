/**
 * Error rendering: any error a route throws becomes `{"error":{"code","message"}}` with the
 * status, Retry-After and Allow of toWire() (lib/errors.ts); anything unexpected is a generic
 * 500, logged with the request id and stack. Never a stack trace in a response. The pipeline
 * renders through wayOut (lib/http/way-out.ts), a parked poll's later answer through LaterAnswers;
 * where there is no response object (a refused upgrade, a request Node's parser refused:
 * lib/http/client-error.ts), refuseOnSocket.
 */
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Context } from 'koa';
import { errorBody, toWire, type WireError } from '../errors.js';
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

/**
 * Answers on a bare socket, where no response object exists (a refused WebSocket upgrade, a
 * request Node's parser refused): the same JSON error, then the socket is destroyed once written.
 */
export function refuseOnSocket(socket: Duplex, wire: WireError): void {
  const body = errorBody(wire);
  const retry = wire.retryAfter !== undefined ? `Retry-After: ${wire.retryAfter}\r\n` : '';
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${wire.status} ${STATUS_CODES[wire.status]}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nCache-Control: no-store\r\n${retry}\r\n${body}`,
  );
}
