/**
 * GET <mount>/ws: the WebSocket transport, on the HTTP server's 'upgrade' event. The handshake is
 * refused with a real HTTP answer rendered from toWire() (403 for a foreign Origin, 401 for bad
 * credentials, 429 over the per-IP rate or a connection cap, 503 while draining or when the
 * process is full) and the socket destroyed: never a hang. Accepted sockets become WsConnections
 * sharing one Heartbeat; the connection slot taken here follows the subject an auth frame names
 * later (ConnectionSlot). See docs/PROTOCOL.md.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Auth, Principal } from '../auth.js';
import type { Config } from '../config.js';
import type { CursorCodec } from '../cursor.js';
import { CLOSE, ForbiddenError, NotFoundError, ShuttingDownError, toWire } from '../errors.js';
import { refuseOnSocket } from '../http/errors.js';
import { clientIp } from '../http/client-ip.js';
import { credentialFrom } from '../http/credentials.js';
import { targetOf } from '../http/target.js';
import type { CapSlot } from '../limits/connection-caps.js';
import type { RateLimits } from '../limits/rate-limits.js';
import { redactUrl, type Logger } from '../log.js';
import type { Messages } from '../messages.js';
import type { Metrics } from '../metrics.js';
import type { Sessions } from '../sessions.js';
import type { Store } from '../store/store.js';
import { capHolder, type Subscriptions } from '../subscriptions.js';
import type { WaiterRegistry } from '../waiters.js';
import { Heartbeat } from './heartbeat.js';
import type { ConnectionHub } from './hub.js';
import { WsConnection, type ConnectionSlot, type WsConnectionDeps } from './ws-connection.js';

export interface WsHubDeps {
  config: Config;
  /** The WebSocket path: the mount followed by /ws. */
  path: string;
  store: Store;
  registry: WaiterRegistry;
  auth: Auth;
  cursors: CursorCodec;
  subscriptions: Subscriptions;
  messages: Messages;
  /** New connections per IP (rateLimits.pollsPerIpPerSecond). */
  rateLimits: RateLimits;
  log: Logger;
  sessions?: Sessions;
  metrics?: Metrics;
}

/**
 * Whether a handshake's Origin may open a socket (cross-site WebSocket hijacking): no Origin
 * (not a browser), an allowlisted one, or the gateway's own host (compared without the scheme:
 * behind a TLS-terminating proxy the page is https and we see http).
 */
export function originAllowed(origin: string | undefined, host: string | undefined, allowed: ReadonlySet<string>): boolean {
  if (origin === undefined) return true;
  if (allowed.has(origin)) return true;
  try {
    return host !== undefined && new URL(origin).host === host.toLowerCase();
  } catch {
    return false; // "null" (sandboxed frames, file://) and garbage
  }
}

export class WsHub implements ConnectionHub {
  readonly heartbeat: Heartbeat;
  private readonly wss: WebSocketServer;
  private readonly connections = new Set<WsConnection>();
  /** Sockets not yet closed, including those whose connection was already released. */
  private readonly sockets = new Set<WebSocket>();
  private readonly origins: ReadonlySet<string>;
  private readonly connectionDeps: WsConnectionDeps;
  private draining = false;

  constructor(private readonly deps: WsHubDeps) {
    const { ws } = deps.config;
    this.origins = new Set(deps.config.cors.origins);
    this.heartbeat = new Heartbeat({ intervalMs: ws.pingIntervalMs, timeoutMs: ws.pongTimeoutMs, maxMissed: ws.maxMissedPongs });
    this.wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      maxPayload: ws.maxPayloadBytes,
      perMessageDeflate: false,
      // @ts-expect-error closeTimeout (ws >= 8.18) is not in @types/ws yet
      closeTimeout: ws.closeTimeoutMs,
    });
    this.connectionDeps = {
      options: ws,
      auth: deps.auth,
      cursors: deps.cursors,
      subscriptions: deps.subscriptions,
      messages: deps.messages,
      feed: { store: deps.store, registry: deps.registry },
      heartbeat: this.heartbeat,
      log: deps.log,
      sessions: deps.sessions,
      metrics: deps.metrics,
      released: (conn) => this.connections.delete(conn),
    };
  }

  /** Open, not yet released connections. */
  get size(): number {
    return this.connections.size;
  }

  /** Whether an upgrade request is for this hub's path (anything else is left to the host). */
  owns(req: IncomingMessage): boolean {
    return targetOf(req.url ?? '')?.path === this.deps.path;
  }

  /** An 'upgrade' listener for this hub's path. Never throws; every refusal is an HTTP answer. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const onError = (err: Error) => this.deps.log.debug({ err: err.message }, 'upgrade socket error');
    socket.on('error', onError);
    const ip = clientIp(req, this.deps.config.server.trustProxyHops);
    this.authorise(req, ip).then(
      (principal) => {
        if (socket.destroyed) return;
        if (this.draining) return refuse(socket, new ShuttingDownError(), this.deps.log);
        let slot: CapSlot;
        try {
          slot = this.deps.subscriptions.acquire(principal, ip);
        } catch (err) {
          return refuse(socket, err, this.deps.log, this.deps.metrics);
        }
        // The raw socket closes on every path: refused by ws, closed, dropped, or reset by the client.
        socket.once('close', () => slot.release());
        let subject = capHolder(principal, ip).subject;
        const held: ConnectionSlot = {
          retake: (next) => {
            if (capHolder(next, ip).subject === subject) return;
            slot.release();
            subject = capHolder(next, ip).subject;
            slot = this.deps.subscriptions.acquire(next, ip);
          },
        };
        this.wss.handleUpgrade(req, socket, head, (ws) => {
          socket.off('error', onError);
          this.accept(ws, principal, held);
        });
      },
      (err: unknown) => {
        this.deps.log.info({ url: redactUrl(req.url ?? ''), origin: req.headers.origin, code: toWire(err).code }, 'websocket handshake refused');
        refuse(socket, err, this.deps.log, this.deps.metrics);
      },
    );
  }

  /** Closes every socket with 1001 and resolves once all are closed (closeTimeoutMs at most). */
  async shutdown(): Promise<void> {
    this.draining = true;
    const closed = [...this.sockets].map((ws) => new Promise((resolve) => ws.once('close', resolve)));
    for (const conn of [...this.connections]) conn.close(CLOSE.goingAway, 'server shutting down');
    await Promise.all(closed);
  }

  /** The principal from upgrade credentials, or undefined when the client will send an auth frame. */
  private async authorise(req: IncomingMessage, ip: string): Promise<Principal | undefined> {
    const target = targetOf(req.url ?? '');
    if (target?.path !== this.deps.path) throw new NotFoundError('no such endpoint');
    if (this.draining) throw new ShuttingDownError();
    await this.deps.rateLimits.checkPoll(ip);
    if (!originAllowed(req.headers.origin, req.headers.host, this.origins)) {
      throw new ForbiddenError('this Origin may not open a WebSocket (add it to cors.origins)');
    }
    const credential = credentialFrom(req.headers.authorization, new URLSearchParams(target.query).get('token') ?? undefined);
    return credential ? this.deps.auth.authenticate(credential) : undefined;
  }

  private accept(ws: WebSocket, principal: Principal | undefined, slot: ConnectionSlot): void {
    this.sockets.add(ws);
    ws.once('close', () => this.sockets.delete(ws));
    const conn = new WsConnection(ws, this.connectionDeps, slot, principal);
    this.connections.add(conn);
    conn.start();
    this.deps.log.info({ sub: principal?.subject }, 'websocket open');
    if (this.draining) conn.close(CLOSE.goingAway, 'server shutting down');
  }
}

/** Answers an upgrade with an HTTP error rendered from toWire() (refuseOnSocket) and destroys the socket once written. */
export function refuse(socket: Duplex, err: unknown, log: Logger, metrics?: Metrics): void {
  if (socket.destroyed) return;
  const wire = toWire(err);
  metrics?.refused(wire);
  if (wire.unexpected) log.error({ err }, 'websocket handshake failed');
  refuseOnSocket(socket, wire);
}
