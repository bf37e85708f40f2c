/**
 * pollgate as a library: createGateway(options) gives a gateway whose middleware() serves every
 * endpoint under `options.mount` in a host Koa app, whose attach(server) takes WebSocket upgrades
 * on <mount>/ws, and whose close() drains and closes it. README.md, "Embedding in a Koa app".
 */
import type { Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Middleware } from 'koa';
import type { MiddlewareOptions } from './app.js';
import { ConfigError, loadConfig, type Config, type ConfigInput } from './config.js';
import { GatewayCore, type AttachOptions } from './gateway.js';
import type { GatewayHooks } from './hooks.js';
import type { Logger } from './log.js';
import { announceDemoToken } from './routes/demo.js';

/**
 * The config file's shape (docs in README.md, "Configuration"), plus `mount` (default "/"), plus
 * the embedder's callbacks beside them: `authorize`, `onPublish`, `onConnect`, `onDisconnect`
 * (GatewayHooks; README.md, "Server hooks").
 */
export type GatewayOptions = ConfigInput & GatewayHooks;

const HOOK_OPTIONS = ['authorize', 'onPublish', 'onConnect', 'onDisconnect'] as const;

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
   * Ends every connection of `sub` on every node (WebSocket close 4403, SSE `end`, parked polls
   * 403); with `revoke`, its tokens issued until now are refused for disconnect.revokeSeconds.
   * The same as POST <mount>/disconnect. Resolves with the connections ended on this node.
   */
  disconnect(sub: string, options?: { revoke?: boolean }): Promise<{ sub: string; connections: number; revokedUntil?: number }>;
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
  const configInput: Record<string, unknown> = { ...options };
  const hooks: GatewayHooks = {};
  for (const name of HOOK_OPTIONS) {
    const fn = configInput[name];
    delete configInput[name];
    if (fn === undefined) continue;
    if (typeof fn !== 'function') throw new ConfigError(`config is invalid:\n  ${name}: must be a function`);
    (hooks as Record<string, unknown>)[name] = fn;
  }
  const config = loadConfig({ files: false, env: { NODE_ENV: process.env.NODE_ENV }, overrides: configInput as ConfigInput, demoTokenByDefault: false });
  if (hooks.authorize && config.hooks.url) throw new ConfigError('config is invalid:\n  authorize and hooks.url: give one of them (the callback, or the HTTP hook)');
  const gateway = await GatewayCore.create(config, { ...parts, hooks });
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
  StoreUnavailableError, ShuttingDownError, HookUnavailableError, toWire, type WireError,
} from './errors.js';
export type { MiddlewareOptions } from './app.js';
export type { GatewayHooks, AuthorizeRequest, PublishedMessage, ConnectionEvent, HookAction, HookTransport } from './hooks.js';
export type { AttachOptions } from './gateway.js';
