/**
 * Typed errors. Throw them anywhere; toWire() (below) is the one place they become what a client
 * sees, and every renderer (HTTP and JSONP answers, WebSocket handshake refusals, error frames and
 * close codes) starts from it. `expose` marks messages written for clients; anything else is a
 * generic 500 `internal`.
 */
import { STATUS_CODES } from 'node:http';
export class GatewayError extends Error {
  readonly code: string = 'internal';
  readonly status: number = 500;
  readonly expose: boolean = true;
  /** Seconds, sent as Retry-After when set. */
  retryAfter?: number;
}

export class BadRequestError extends GatewayError {
  override readonly name = 'BadRequestError';
  override readonly code: string = 'bad_request';
  override readonly status = 400;
}

export class InvalidCursorError extends BadRequestError {
  override readonly code = 'invalid_cursor';
}

export class UnauthorizedError extends GatewayError {
  override readonly name = 'UnauthorizedError';
  override readonly code = 'unauthorized';
  override readonly status = 401;
}

export class ForbiddenError extends GatewayError {
  override readonly name = 'ForbiddenError';
  override readonly code = 'forbidden';
  override readonly status = 403;
}

export class NotFoundError extends GatewayError {
  override readonly name = 'NotFoundError';
  override readonly code = 'not_found';
  override readonly status = 404;
}

export class MethodNotAllowedError extends GatewayError {
  override readonly name = 'MethodNotAllowedError';
  override readonly code = 'method_not_allowed';
  override readonly status = 405;
  constructor(message: string, readonly allow: string[]) {
    super(message);
  }
}

export class PayloadTooLargeError extends GatewayError {
  override readonly name = 'PayloadTooLargeError';
  override readonly code = 'payload_too_large';
  override readonly status = 413;
}

/**
 * The request line and headers are over the server's limit (Node's maxHeaderSize, 16 KiB by
 * default), so Node's parser refused them before any route saw the request: a GET poll of many
 * streams carries its streams and cursor in the URL.
 */
export class HeadersTooLargeError extends GatewayError {
  override readonly name = 'HeadersTooLargeError';
  override readonly code = 'headers_too_large';
  override readonly status = 431;
}

export class UnsupportedMediaTypeError extends GatewayError {
  override readonly name = 'UnsupportedMediaTypeError';
  override readonly code = 'unsupported_media_type';
  override readonly status = 415;
}

/** A per-connection limit (e.g. WebSocket subscriptions) would be exceeded; nothing was changed. */
export class LimitExceededError extends GatewayError {
  override readonly name = 'LimitExceededError';
  override readonly code = 'limit_exceeded';
  override readonly status = 400;
}

export class RateLimitedError extends GatewayError {
  override readonly name = 'RateLimitedError';
  override readonly code = 'rate_limited';
  override readonly status = 429;
  constructor(message: string, retryAfter: number) {
    super(message);
    this.retryAfter = retryAfter;
  }
}

/** The client took longer than allowed to send its request body; the connection is closed. */
export class RequestTimeoutError extends GatewayError {
  override readonly name = 'RequestTimeoutError';
  override readonly code = 'request_timeout';
  override readonly status = 408;
}

/** This process holds as many connections as it may; another node (or a later retry) can answer. */
export class OverloadedError extends GatewayError {
  override readonly name = 'OverloadedError';
  override readonly code = 'overloaded';
  override readonly status = 503;
  constructor(message: string, retryAfter: number) {
    super(message);
    this.retryAfter = retryAfter;
  }
}

/** The store (Redis) could not be reached or refused the write; nothing was stored. */
export class StoreUnavailableError extends GatewayError {
  override readonly name = 'StoreUnavailableError';
  override readonly code = 'store_unavailable';
  override readonly status = 503;
  constructor(message = 'the message store is unavailable, retry shortly', retryAfter = 1) {
    super(message);
    this.retryAfter = retryAfter;
  }
}

/** The authorize hook (hooks.url) did not answer in time or failed, and the gateway fails closed; retry. */
export class HookUnavailableError extends GatewayError {
  override readonly name = 'HookUnavailableError';
  override readonly code = 'hook_unavailable';
  override readonly status = 503;
  constructor(message = 'the authorization hook did not answer, retry shortly', retryAfter = 1) {
    super(message);
    this.retryAfter = retryAfter;
  }
}

/** The process is draining for shutdown; the client should retry (another node will answer). */
export class ShuttingDownError extends GatewayError {
  override readonly name = 'ShuttingDownError';
  override readonly code = 'shutting_down';
  override readonly status = 503;
  constructor() {
    super('this gateway node is shutting down, retry');
    this.retryAfter = 1;
  }
}

/** An error as every transport shows it. */
export interface WireError {
  /** HTTP status. */
  status: number;
  code: string;
  message: string;
  /** Whole seconds, sent as Retry-After (HTTP) or `retryAfter` (frames). */
  retryAfter?: number;
  /** Methods the path allows (405 only), sent as Allow. */
  allow?: readonly string[];
  /** The WebSocket close code when this error ends a socket (docs/PROTOCOL.md, "Close codes"). */
  closeCode: number;
  /** Not one of ours: the renderer logs it with its stack; the client only sees `internal`. */
  unexpected: boolean;
}

/** Close codes the gateway sends that no error carries (RFC 6455 5.5; 4000-4999 is ours). */
export const CLOSE = {
  normal: 1000,
  goingAway: 1001,
  /** The client does not read what it is sent (ws.maxBufferedBytes). */
  tooSlow: 4008,
} as const;

/**
 * The close code for an error that ends a socket: 4000 + the HTTP status for client errors (4401
 * unauthorized, 4403 forbidden, 4429 rate limited), 1013 "try again later" for an overloaded or
 * unavailable gateway, 1001 while shutting down, 1011 for anything unexpected.
 */
function closeCodeOf(code: string, status: number): number {
  if (code === 'shutting_down') return CLOSE.goingAway;
  if (status >= 400 && status < 500) return 4000 + status;
  if (status === 503) return 1013;
  return 1011;
}

/** What a client may see of any thrown value. Never the stack, never an unexposed message. */
export function toWire(err: unknown): WireError {
  if (err instanceof GatewayError && err.expose) {
    return {
      status: err.status,
      code: err.code,
      message: err.message,
      retryAfter: err.retryAfter === undefined ? undefined : Math.ceil(err.retryAfter),
      allow: err instanceof MethodNotAllowedError ? err.allow : undefined,
      closeCode: closeCodeOf(err.code, err.status),
      unexpected: false,
    };
  }
  if (isClientHttpError(err)) {
    // Raised by Koa or Node (a bad URL encoding, say): the request's fault. Its status keeps the
    // code our own error of that status has; its text is not ours and is not shown.
    const code = CODE_OF_CLIENT_STATUS.get(err.status) ?? 'bad_request';
    const message = err.status === 400 ? 'malformed request' : (STATUS_CODES[err.status] ?? 'client error').toLowerCase();
    return { status: err.status, code, message, closeCode: closeCodeOf(code, err.status), unexpected: false };
  }
  return { status: 500, code: 'internal', message: 'internal error', closeCode: 1011, unexpected: true };
}

/**
 * The code each client-error status has among our own errors: what a foreign 4xx of that status
 * is called. Not 405 and 429: ours carry Allow and Retry-After, which a foreign one cannot give,
 * and a 429 would count as the gateway's own rate limiting in the metrics.
 */
const CODE_OF_CLIENT_STATUS = new Map<number, string>(
  [new BadRequestError(''), new UnauthorizedError(''), new ForbiddenError(''), new NotFoundError(''), new RequestTimeoutError(''), new PayloadTooLargeError(''), new UnsupportedMediaTypeError('')]
    .map((e) => [e.status, e.code]),
);

function isClientHttpError(err: unknown): err is { status: number } {
  const status = (err as { status?: unknown })?.status;
  return typeof status === 'number' && status >= 400 && status < 500 && (err as { expose?: boolean }).expose === true;
}

/** `{"error":{"code","message"}}`: the body of every error answer. */
export function errorBody(wire: Pick<WireError, 'code' | 'message'>): string {
  return JSON.stringify({ error: { code: wire.code, message: wire.message } });
}
