/**
 * pollgate as a library: createGateway(options) gives a gateway whose middleware() serves every
 * endpoint under `options.mount` in a host Koa app, whose attach(server) takes WebSocket upgrades
 * on <mount>/ws, and whose close() drains and closes it. README.md, "Embedding in a Koa app".
 */
import type { Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Middleware } from 'koa';
import type { MiddlewareOptions } from './app.js';
import { loadConfig, type Config, type ConfigInput } from './config.js';
import { GatewayCore, type AttachOptions } from './gateway.js';
import type { Logger } from './log.js';
import { announceDemoToken } from './routes/demo.js';

/** The config file's shape (docs in README.md, "Configuration"), plus `mount` (default "/"). */
export type GatewayOptions = ConfigInput;

export interface Gateway {
  /** The validated, frozen configuration. */
  readonly config: Config;
  /**
   * Koa middleware serving every endpoint under the mount (poll, send, sse, healthz, readyz,
   * stats, the client at pollgate.js, ...). Requests for other paths go to `next()` untouched.
   */
  middleware(options?: MiddlewareOptions): Middleware;
  /**
   * A client token for a browser (HS256 with auth.secret): the stream patterns it may read
   * (`streams`) and send to (`pub`), valid for `ttlSeconds`.
   */
  mintToken(claims: { sub: string; streams: string[]; pub?: string[]; ttlSeconds: number }): Promise<string>;
  /** Takes WebSocket upgrades to <mount>/ws on `server`; upgrades to other paths are left alone. */
  attach(server: HttpServer | HttpsServer, options?: AttachOptions): void;
  /**
   * The SIGTERM drain: readiness turns 503, parked polls are answered with their cursors unchanged,
   * WebSockets are closed with 1001, event streams are ended, requests in flight finish, then the
   * store is closed. Resolves once done; safe to call twice. The host closes its own server.
   */
  close(): Promise<void>;
}

/**
 * Validates `options` with the config schema (no config files, no environment variables: the
 * host passes what it means) and opens the store. /demo/token is off unless `auth.demoToken` is
 * true. Throws ConfigError naming every bad key, or the store's connection error.
 */
export async function createGateway(options: GatewayOptions = {}, parts: { log?: Logger } = {}): Promise<Gateway> {
  const config = loadConfig({ files: false, env: { NODE_ENV: process.env.NODE_ENV }, overrides: options, demoTokenByDefault: false });
  const gateway = await GatewayCore.create(config, parts);
  if (config.generated.apiKey || config.generated.secret) {
    gateway.log.warn('auth.secret or auth.apiKeys were generated for this process: pass your own to createGateway()');
  }
  announceDemoToken(config, gateway.log);
  return gateway;
}

export { ConfigError, type Config, type ConfigInput } from './config.js';
export {
  GatewayError, BadRequestError, InvalidCursorError, UnauthorizedError, ForbiddenError, NotFoundError, MethodNotAllowedError,
  PayloadTooLargeError, UnsupportedMediaTypeError, LimitExceededError, RateLimitedError, RequestTimeoutError, OverloadedError,
  StoreUnavailableError, ShuttingDownError, toWire, type WireError,
} from './errors.js';
export type { MiddlewareOptions } from './app.js';
export type { AttachOptions } from './gateway.js';
