/**
 * start(): config -> store -> waiters -> app (+ WebSocket upgrades) -> listen. The returned
 * gateway's shutdown() drains: readiness turns 503, parked polls are answered at once with their
 * cursors unchanged, WebSockets are closed with 1001, event streams are ended, in-flight requests
 * finish, connections still open at the grace deadline are cut, the store is closed.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createHandler } from './app.js';
import { Auth } from './auth.js';
import { retentionFor, type Config } from './config.js';
import { CursorCodec } from './cursor.js';
import { ConnectionCaps } from './limits/connection-caps.js';
import { RateLimits } from './limits/rate-limits.js';
import { createLogger, type Logger } from './log.js';
import { MemoryStore } from './store/memory-store.js';
import { RedisStore } from './store/redis-store.js';
import type { Store } from './store/store.js';
import { LongPolls } from './transports/long-poll.js';
import { SseHub } from './transports/sse.js';
import { WsHub } from './transports/websocket.js';
import { WaiterRegistry } from './waiters.js';

export interface Gateway {
  config: Config;
  log: Logger;
  store: Store;
  registry: WaiterRegistry;
  longPolls: LongPolls;
  /** WebSocket connections (GET /ws); `size` counts open ones. */
  websockets: WsHub;
  /** Server-Sent Events streams (GET /sse); `size` counts open ones. */
  sse: SseHub;
  /** Open long-lived connections (parked polls, SSE streams, WebSockets) per subject, IP and process. */
  caps: ConnectionCaps;
  auth: Auth;
  cursors: CursorCodec;
  server: Server;
  port: number;
  /** Drains and closes; resolves when everything is released. Safe to call twice. */
  shutdown(): Promise<void>;
}

export interface StartOptions {
  log?: Logger;
  /** Use this store instead of building one from config (tests wrap a real store this way). */
  store?: Store;
}

export async function createStore(config: Config, log: Logger): Promise<Store> {
  const retention = (stream: string) => retentionFor(config, stream);
  if (!config.redis.url) {
    log.warn('memory store: single process and not durable; set REDIS_URL for durable or multi-node use');
    return new MemoryStore(retention);
  }
  const store = new RedisStore({
    url: config.redis.url,
    keyPrefix: config.redis.keyPrefix,
    cluster: config.redis.cluster,
    commandTimeoutMs: config.redis.commandTimeoutMs,
    ack: { durability: config.redis.ackDurability, replicas: config.redis.ackReplicas, timeoutMs: config.redis.ackTimeoutMs },
    retention,
    tailCache: config.redis.tailCache,
    log: log.child({ module: 'redis' }),
  });
  await store.connect();
  return store;
}

export async function start(config: Config, options: StartOptions = {}): Promise<Gateway> {
  const log = options.log ?? createLogger(config.log.level);
  const store = options.store ?? (await createStore(config, log));
  const registry = new WaiterRegistry(store, log.child({ module: 'waiters' }));
  const longPolls = new LongPolls(store, registry, log.child({ module: 'long-poll' }));
  const auth = new Auth(config.auth);
  const cursors = new CursorCodec(config.auth.secret);
  const rateLimits = new RateLimits(config.rateLimits, log.child({ module: 'rate-limits' }), store.kind === 'redis' && config.redis.url ? config.redis : undefined);
  await rateLimits.connect();
  const caps = new ConnectionCaps({
    perSubject: config.limits.parkedPerSubject,
    perIp: config.limits.parkedPerIp,
    perProcess: config.limits.parkedPerProcess,
    retryAfterSeconds: config.limits.capRetryAfterSeconds,
  });
  const websockets = new WsHub({ config, store, registry, auth, cursors, rateLimits, caps, log: log.child({ module: 'websocket' }) });
  const sse = new SseHub({ store, registry, cursors, log: log.child({ module: 'sse' }), options: config.sse });
  let draining = false;
  const handler = createHandler({
    config, log, store, auth, cursors, longPolls, registry, sse, rateLimits, caps,
    staticDir: fileURLToPath(new URL('../../static', import.meta.url)),
    isDraining: () => draining,
  });

  const server = createServer({ connectionsCheckingInterval: config.server.connectionsCheckingIntervalMs }, handler);
  server.keepAliveTimeout = config.server.keepAliveTimeoutMs;
  server.headersTimeout = config.server.headersTimeoutMs;
  server.requestTimeout = config.server.requestTimeoutMs;
  server.on('upgrade', (req, socket, head) => websockets.handleUpgrade(req, socket, head));
  // Connections that never sent a request (browser preconnects, a fetch pool's spare socket) are not
  // "idle" to Node, so closeIdleConnections() leaves them and they would hold shutdown for the grace.
  const unused = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    unused.add(socket);
    socket.once('close', () => unused.delete(socket));
  });
  server.on('request', (req) => unused.delete(req.socket));
  server.prependListener('upgrade', (req) => unused.delete(req.socket));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;

  let closing: Promise<void> | undefined;
  /** How long shutdown lets a connection that has sent nothing yet start its request. */
  const UNUSED_SOCKET_WAIT_MS = 500;
  const shutdown = () =>
    (closing ??= (async () => {
      draining = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      longPolls.shutdown();
      const streamsEnded = sse.shutdown();
      server.closeIdleConnections();
      const grace = setTimeout(() => server.closeAllConnections(), config.server.shutdownGraceMs);
      // Upgraded sockets are no longer HTTP connections: closeAllConnections() does not reach them.
      await Promise.all([websockets.shutdown(), streamsEnded]);
      // Ended event streams leave idle keep-alive connections behind.
      server.closeIdleConnections();
      // Sockets that still have sent nothing a moment later are spare (preconnects, pool sockets);
      // one whose request is on its way by then has bytes read and gets its answer.
      // setImmediate: if the loop was busy past the wait, the timer runs before that turn's reads;
      // the check phase runs after them, so bytes that had arrived are counted by then.
      const spare = setTimeout(() => setImmediate(() => {
        for (const socket of unused) if (socket.bytesRead === 0) socket.destroy();
      }), Math.min(UNUSED_SOCKET_WAIT_MS, config.server.shutdownGraceMs));
      await closed;
      clearTimeout(grace);
      clearTimeout(spare);
      await Promise.all([store.close(), rateLimits.close()]);
    })());

  return { config, log, store, registry, longPolls, websockets, sse, caps, auth, cursors, server, port, shutdown };
}
