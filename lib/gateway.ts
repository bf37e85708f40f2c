/**
 * A gateway: config -> store -> waiters -> the rules (subscriptions, messages, limits) -> the
 * transports -> the one pipeline (lib/app.ts). It owns no server: a host app mounts
 * middleware() and attach()es its server; lib/server.ts does both for `npm start`.
 */
import { maxHeaderSize, type Server as HttpServer, type IncomingMessage } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { Middleware } from 'koa';
import { createPipeline, type MiddlewareOptions } from './app.js';
import { bodyLimits, type BodyLimits } from './http/body.js';
import { answerClientError } from './http/client-error.js';
import { Auth } from './auth.js';
import { retentionFor, type Config } from './config.js';
import { CursorCodec } from './cursor.js';
import { Disconnects, RedisDisconnectBus } from './disconnect.js';
import { BadRequestError, NotFoundError } from './errors.js';
import { Hooks, type GatewayHooks } from './hooks.js';
import { RequestTracker } from './http/request-tracker.js';
import { loadStaticFiles } from './http/static.js';
import { targetOf } from './http/target.js';
import { ConnectionCaps } from './limits/connection-caps.js';
import { RateLimits } from './limits/rate-limits.js';
import { createLogger, type Logger } from './log.js';
import { Messages } from './messages.js';
import { Metrics } from './metrics.js';
import { serveMetrics, type MetricsServer } from './metrics-server.js';
import { MemoryPresence, Presence } from './presence.js';
import { Sessions } from './sessions.js';
import { MemoryStore } from './store/memory-store.js';
import { RedisControl } from './store/redis-control.js';
import { RedisPresence } from './store/redis-presence.js';
import { RedisStore } from './store/redis-store.js';
import { usesRedis } from './store/redis-target.js';
import type { Store } from './store/store.js';
import { Subscriptions } from './subscriptions.js';
import { LongPolls } from './transports/long-poll.js';
import { PollSessions } from './transports/poll-sessions.js';
import { SseHub } from './transports/sse.js';
import { refuse, WsHub } from './transports/websocket.js';
import { WaiterRegistry } from './waiters.js';

export interface GatewayParts {
  log?: Logger;
  /** Use this store instead of building one from config (tests wrap a real store this way). */
  store?: Store;
  /** The embedder's callbacks: authorize, onPublish, onConnect, onDisconnect (lib/hooks.ts). */
  hooks?: GatewayHooks;
}

export interface AttachOptions {
  /**
   * true (default): upgrades to other paths are left to the server's other 'upgrade' listeners.
   * false: they are refused with a JSON 404 (the standalone server).
   */
  fallthrough?: boolean;
  /**
   * true: requests that Node's HTTP parser refuses before any middleware sees them (headers over
   * the server's maxHeaderSize, a malformed request, one not received in time) are answered with
   * the gateway's JSON error instead of Node's bare status line. A 'clientError' listener is the
   * whole server's, not one path's, so it is the host's choice. Default false; the standalone
   * server sets it.
   */
  clientErrors?: boolean;
}

type AnyServer = HttpServer | HttpsServer;
type UpgradeListener = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
type ClientErrorListener = (err: NodeJS.ErrnoException, socket: Duplex) => void;

const STATIC_DIR = fileURLToPath(new URL('../../static', import.meta.url));

/** The store the config asks for: memory when neither redis.url nor redis.sentinels is set, else Redis (connected). */
export async function createStore(config: Config, log: Logger): Promise<Store> {
  const retention = (stream: string) => retentionFor(config, stream);
  if (!usesRedis(config.redis)) {
    log.warn('memory store: single process and not durable; set redis.url (REDIS_URL) for durable or multi-node use');
    return new MemoryStore(retention);
  }
  const store = new RedisStore({
    url: config.redis.url,
    sentinels: config.redis.sentinels,
    name: config.redis.name,
    keyPrefix: config.redis.keyPrefix,
    cluster: config.redis.cluster,
    shardedPubSub: config.redis.shardedPubSub,
    commandTimeoutMs: config.redis.commandTimeoutMs,
    ack: { durability: config.redis.ackDurability, replicas: config.redis.ackReplicas, timeoutMs: config.redis.ackTimeoutMs },
    retention,
    tailCache: config.redis.tailCache,
    log: log.child({ module: 'redis' }),
  });
  await store.connect();
  return store;
}

export class GatewayCore {
  readonly auth: Auth;
  readonly cursors: CursorCodec;
  readonly registry: WaiterRegistry;
  readonly caps: ConnectionCaps;
  readonly subscriptions: Subscriptions;
  readonly messages: Messages;
  readonly longPolls: LongPolls;
  readonly sse: SseHub;
  /** WebSocket connections (<mount>/ws); `size` counts open ones. */
  readonly websockets: WsHub;
  /** Every client connection of this process, on every transport (lib/sessions.ts). */
  readonly sessions = new Sessions();
  readonly pollSessions: PollSessions;
  readonly hooks: Hooks;
  readonly presence: Presence;
  readonly disconnects: Disconnects;
  readonly metrics: Metrics;
  /** The metrics.port server, when configured. */
  metricsServer?: MetricsServer;
  private readonly pipeline: (options?: MiddlewareOptions) => Middleware;
  /** The listeners attach() put on each server, taken off at close. */
  private readonly attached = new Map<AnyServer, { upgrade: UpgradeListener; clientError?: ClientErrorListener; fallthrough: boolean }>();
  /** Requests inside the pipeline: close() waits for them before it closes the store. */
  readonly requests = new RequestTracker();
  /** The cap and deadline of every request body the pipeline reads; its deadline timer stops at close. */
  private readonly bodyLimits: BodyLimits;
  private draining = false;
  private drained?: Promise<void>;
  private closed?: Promise<void>;

  /** Builds a gateway on an opened store; see createGateway() in lib/index.ts. */
  static async create(config: Config, parts: GatewayParts = {}): Promise<GatewayCore> {
    const log = parts.log ?? createLogger(config.log.level);
    const store = parts.store ?? (await createStore(config, log));
    const rateLimits = new RateLimits(config.rateLimits, log.child({ module: 'rate-limits' }), store.kind === 'redis' && usesRedis(config.redis) ? config.redis : undefined);
    await rateLimits.connect();
    let control: RedisControl | undefined;
    if (store.kind === 'redis' && usesRedis(config.redis)) {
      control = new RedisControl({ url: config.redis.url, sentinels: config.redis.sentinels, name: config.redis.name, keyPrefix: config.redis.keyPrefix, cluster: config.redis.cluster, commandTimeoutMs: config.redis.commandTimeoutMs, log: log.child({ module: 'control' }) });
      await control.connect();
    }
    const gateway = new GatewayCore(config, log, store, rateLimits, await loadStaticFiles(STATIC_DIR), parts.hooks ?? {}, control);
    try {
      await gateway.disconnects.start();
      if (config.metrics.port !== undefined) gateway.metricsServer = await serveMetrics(gateway.metrics, config.metrics.port, config.metrics.host);
    } catch (err) {
      await gateway.close();
      throw err;
    }
    return gateway;
  }

  private constructor(
    readonly config: Config,
    readonly log: Logger,
    readonly store: Store,
    readonly rateLimits: RateLimits,
    staticFiles: Awaited<ReturnType<typeof loadStaticFiles>>,
    callbacks: GatewayHooks,
    private readonly control?: RedisControl,
  ) {
    this.auth = new Auth(config.auth);
    this.hooks = new Hooks(callbacks, config.hooks, log.child({ module: 'hooks' }));
    const { presence, disconnect } = config;
    this.presence = new Presence(
      presence,
      control ? new RedisPresence(control, { heartbeatMs: presence.heartbeatSeconds * 1000, ttlMs: presence.ttlSeconds * 1000 }) : new MemoryPresence(),
      store,
      log.child({ module: 'presence' }),
    );
    this.sessions.listen(this.presence);
    this.sessions.listen({
      opened: (s) => this.hooks.connected({ subject: s.subject, transport: s.transport, streams: s.streams }),
      ended: (s, reason) => this.hooks.disconnected({ subject: s.subject, transport: s.transport, streams: s.streams, reason }),
    });
    const bus = control && new RedisDisconnectBus(control, Math.max(disconnect.revokeSeconds, 60) * 1000);
    this.disconnects = new Disconnects(this.sessions, bus, disconnect, log.child({ module: 'disconnect' }));
    this.auth.revoked = (subject, issuedAt) => this.disconnects.isRevoked(subject, issuedAt);
    this.pollSessions = new PollSessions(this.sessions, presence.pollGraceSeconds * 1000);
    this.metrics = new Metrics({
      connections: (t) => (t === 'ws' ? this.websockets.size : t === 'sse' ? this.sse.size : this.pollSessions.size),
      parkedPolls: () => this.longPolls.size,
    });
    this.cursors = new CursorCodec(config.auth.secret, config.auth.cursorVersion);
    this.registry = new WaiterRegistry(store, log.child({ module: 'waiters' }), { answerBytes: config.limits.answerBytes });
    const { limits } = config;
    this.caps = new ConnectionCaps({ perSubject: limits.parkedPerSubject, perIp: limits.parkedPerIp, perProcess: limits.parkedPerProcess, retryAfterSeconds: limits.capRetryAfterSeconds });
    this.subscriptions = new Subscriptions({ store, cursors: this.cursors, caps: this.caps, hooks: this.hooks });
    this.messages = new Messages({ store, limits, rateLimits, hooks: this.hooks, metrics: this.metrics });
    this.longPolls = new LongPolls(store, this.registry, log.child({ module: 'long-poll' }), this.pollSessions);
    this.sse = new SseHub({ store, registry: this.registry, cursors: this.cursors, log: log.child({ module: 'sse' }), options: config.sse, sessions: this.sessions, metrics: this.metrics });
    this.websockets = new WsHub({
      config, path: `${config.mount === '/' ? '' : config.mount}/ws`, store, registry: this.registry, auth: this.auth, cursors: this.cursors,
      subscriptions: this.subscriptions, messages: this.messages, rateLimits, log: log.child({ module: 'websocket' }), sessions: this.sessions, metrics: this.metrics,
    });
    this.bodyLimits = bodyLimits(limits.bodyBytes, limits.bodyTimeoutMs);
    this.pipeline = createPipeline(
      {
        config, log, store, auth: this.auth, cursors: this.cursors, subscriptions: this.subscriptions, messages: this.messages, rateLimits,
        registry: this.registry, longPolls: this.longPolls, sse: this.sse, websockets: this.websockets, staticFiles, isDraining: () => this.draining,
        presence: this.presence, disconnects: this.disconnects, metrics: this.metrics, body: this.bodyLimits,
      },
      this.requests,
    );
  }

  /** Signs a client token (HS256 with the gateway's secret): `streams` it may read, `pub` it may send to, valid `ttlSeconds`. */
  mintToken(claims: { sub: string; streams: string[]; pub?: string[]; ttlSeconds: number }): Promise<string> {
    return this.auth.mintToken(claims);
  }

  /** POST /disconnect's action (lib/disconnect.ts); see Gateway.disconnect in lib/index.ts. */
  disconnect(sub: string, options: { revoke?: boolean } = {}): Promise<{ sub: string; connections: number; revokedUntil?: number }> {
    return this.disconnects.disconnect(sub, options.revoke === true);
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** Every HTTP endpoint under config.mount, as Koa middleware. */
  middleware(options?: MiddlewareOptions): Middleware {
    return this.pipeline(options);
  }

  /**
   * Takes WebSocket upgrades to <mount>/ws on this server (and, with `clientErrors`, answers what
   * Node's parser refuses). A second call for the same server with the same options does nothing;
   * with other options, or after close(), it throws: listeners the caller did not get, or that
   * close() would never take off, would be a surprise later.
   */
  attach(server: AnyServer, options: AttachOptions = {}): void {
    const fallthrough = options.fallthrough ?? true;
    const clientErrors = options.clientErrors ?? false;
    if (this.closed) throw new Error('attach(): this gateway is closed');
    const held = this.attached.get(server);
    if (held) {
      if (held.fallthrough === fallthrough && (held.clientError !== undefined) === clientErrors) return;
      throw new Error('attach(): this server is attached already, with other options');
    }
    // Node cuts a request after server.requestTimeout (300 s by default): it must outlast the longest hold.
    const longestHoldMs = this.config.poll.maxTimeoutSeconds * 1000;
    if (server.requestTimeout > 0 && server.requestTimeout < longestHoldMs + 5000) {
      this.log.warn({ requestTimeout: server.requestTimeout, longestHoldMs }, 'server.requestTimeout is shorter than the longest poll hold plus 5 s: Node will cut parked polls');
    }
    const listener: UpgradeListener = (req, socket, head) => {
      if (this.websockets.owns(req)) this.websockets.handleUpgrade(req, socket, head);
      else if (!fallthrough) {
        // A target without a path is malformed (400); any other path is simply not ours (404).
        const err = targetOf(req.url ?? '') ? new NotFoundError('no such endpoint') : new BadRequestError('the request target must be a path such as /ws');
        refuse(socket, err, this.log);
      }
    };
    server.on('upgrade', listener);
    // The server's own limit when it was created with one (Node keeps it, untyped), else Node's
    // (--max-http-header-size).
    const headerLimit = (server as { maxHeaderSize?: number }).maxHeaderSize ?? maxHeaderSize;
    const clientError = clientErrors ? answerClientError(headerLimit, this.metrics) : undefined;
    if (clientError) {
      // Node's default answer stops once anyone listens; a host's own listener would answer too.
      if (server.listenerCount('clientError') > 0) this.log.warn('attach(): the server has a clientError listener already: both will answer what its parser refuses');
      server.on('clientError', clientError);
    }
    this.attached.set(server, { upgrade: listener, clientError, fallthrough });
  }

  /**
   * The first half of close(): readiness turns 503, parked polls are answered at once with their
   * cursors unchanged, WebSockets are closed with 1001, event streams are ended; resolves once
   * they are released and no request is left inside the pipeline (at most shutdownGraceMs).
   */
  drain(): Promise<void> {
    return (this.drained ??= (async () => {
      this.draining = true;
      await Promise.all([this.longPolls.shutdown(), this.sse.shutdown(), this.websockets.shutdown()]);
      await this.requests.whenIdle(this.config.server.shutdownGraceMs);
    })());
  }

  /** Drains, takes attach()'s listeners off, and closes the store. Safe to call twice. */
  close(): Promise<void> {
    return (this.closed ??= (async () => {
      await this.drain();
      // A body read still going (its request outlived the grace) keeps its deadline.
      this.bodyLimits.deadlines.stopIfIdle();
      for (const [server, { upgrade, clientError }] of this.attached) {
        server.off('upgrade', upgrade);
        if (clientError) server.off('clientError', clientError);
      }
      this.attached.clear();
      await Promise.all([this.presence.close(), this.disconnects.close(), this.metricsServer?.close()]);
      await Promise.all([this.store.close(), this.rateLimits.close(), this.control?.close()]);
    })());
  }
}
