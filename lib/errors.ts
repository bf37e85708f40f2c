/**
 * Typed errors. Throw them anywhere; lib/http/errors.ts is the only place they become responses
 * (and the WebSocket transport the only place they become close codes).
 * `expose` marks messages written for clients; anything else is rendered as a generic 500.
 */
export class GatewayError extends Error {
  readonly code: string = 'internal';
  readonly status: number = 500;
  readonly wsCloseCode: number = 1011;
  readonly expose: boolean = true;
  /** Seconds, sent as Retry-After when set. */
  retryAfter?: number;
}

export class BadRequestError extends GatewayError {
  override readonly name = 'BadRequestError';
  override readonly code: string = 'bad_request';
  override readonly status = 400;
  override readonly wsCloseCode = 1008;
}

export class InvalidCursorError extends BadRequestError {
  override readonly code = 'invalid_cursor';
}

export class UnauthorizedError extends GatewayError {
  override readonly name = 'UnauthorizedError';
  override readonly code = 'unauthorized';
  override readonly status = 401;
  override readonly wsCloseCode = 4401;
}

export class ForbiddenError extends GatewayError {
  override readonly name = 'ForbiddenError';
  override readonly code = 'forbidden';
  override readonly status = 403;
  override readonly wsCloseCode = 4403;
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
  override readonly wsCloseCode = 1009;
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
  override readonly wsCloseCode = 1008;
}

export class RateLimitedError extends GatewayError {
  override readonly name = 'RateLimitedError';
  override readonly code = 'rate_limited';
  override readonly status = 429;
  override readonly wsCloseCode = 1013;
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
  override readonly wsCloseCode = 1008;
}

/** This process holds as many connections as it may; another node (or a later retry) can answer. */
export class OverloadedError extends GatewayError {
  override readonly name = 'OverloadedError';
  override readonly code = 'overloaded';
  override readonly status = 503;
  override readonly wsCloseCode = 1013;
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
  override readonly wsCloseCode = 1011;
  constructor(message = 'the message store is unavailable, retry shortly', retryAfter = 1) {
    super(message);
    this.retryAfter = retryAfter;
  }
}

/** The process is draining for shutdown; the client should retry (another node will answer). */
export class ShuttingDownError extends GatewayError {
  override readonly name = 'ShuttingDownError';
  override readonly code = 'shutting_down';
  override readonly status = 503;
  override readonly wsCloseCode = 1001;
  constructor() {
    super('this gateway node is shutting down, retry');
    this.retryAfter = 1;
  }
}
