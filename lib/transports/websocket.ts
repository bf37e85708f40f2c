/**
 * GET /ws: the WebSocket transport, attached to the HTTP server's 'upgrade' event. The handshake is
 * refused with a real HTTP answer (404, 403 for a foreign Origin, 401 for bad credentials, 429 over
 * the per-IP rate or a connection cap, 503 while draining or when the process is full) and the
 * socket destroyed: never a hang. Accepted sockets become WsConnections sharing
 * one Heartbeat. See docs/PROTOCOL.md.
 */
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Auth, Principal } from '../auth.js';
import type { Config } from '../config.js';
import type { CursorCodec } from '../cursor.js';
import { ForbiddenError, GatewayError, NotFoundError, ShuttingDownError } from '../errors.js';
import { clientIp } from '../http/client-ip.js';
import { credentialFrom } from '../http/credentials.js';
import { errorBody } from '../http/errors.js';
import type { CapSlot, ConnectionCaps } from '../limits/connection-caps.js';
import type { RateLimits } from '../limits/rate-limits.js';
import { redactUrl, type Logger } from '../log.js';
import type { Store } from '../store/store.js';
import type { WaiterRegistry } from '../waiters.js';
import { Heartbeat } from './heartbeat.js';
import { CLOSE, WsConnection } from './ws-connection.js';

export const WS_PATH = '/ws';

export interface WsHubDeps {
  config: Config;
  store: Store;
  registry: WaiterRegistry;
  auth: Auth;
  cursors: CursorCodec;
  log: Logger;
  /** New connections per IP (rateLimits.pollsPerIpPerSecond). */
  rateLimits: RateLimits;
  /** Open sockets per subject, IP and process, shared with parked polls and SSE. */
  caps: ConnectionCaps;
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

export class WsHub {
  readonly config: Config;
  readonly store: Store;
  readonly registry: WaiterRegistry;
  readonly auth: Auth;
  readonly cursors: CursorCodec;
  readonly heartbeat: Heartbeat;
  private readonly log: Logger;
  private readonly rateLimits: RateLimits;
  private readonly caps: ConnectionCaps;
  private readonly wss: WebSocketServer;
  private readonly connections = new Set<WsConnection>();
  /** Sockets not yet closed, including those whose connection was already released. */
  private readonly sockets = new Set<WebSocket>();
  private readonly origins: ReadonlySet<string>;
  private draining = false;

  constructor(deps: WsHubDeps) {
    ({ config: this.config, store: this.store, registry: this.registry, auth: this.auth, cursors: this.cursors } = deps);
    this.log = deps.log;
    this.rateLimits = deps.rateLimits;
    this.caps = deps.caps;
    this.origins = new Set(deps.config.cors.origins);
    this.heartbeat = new Heartbeat({
      intervalMs: this.config.ws.pingIntervalMs,
      timeoutMs: this.config.ws.pongTimeoutMs,
      maxMissed: this.config.ws.maxMissedPongs,
    });
    this.wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      maxPayload: this.config.ws.maxPayloadBytes,
      perMessageDeflate: false,
      // @ts-expect-error closeTimeout (ws >= 8.18) is not in @types/ws yet
      closeTimeout: this.config.ws.closeTimeoutMs,
    });
  }

  /** Open, not yet released connections. */
  get size(): number {
    return this.connections.size;
  }

  /** The server's 'upgrade' listener. Never throws; every refusal is an HTTP answer. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const onError = (err: Error) => this.log.debug({ err: err.message }, 'upgrade socket error');
    socket.on('error', onError);
    const ip = clientIp(req, this.config.server.trustProxyHops);
    this.authorise(req, ip).then(
      (principal) => {
        if (socket.destroyed) return;
        if (this.draining) return this.refuse(socket, new ShuttingDownError());
        let slot: CapSlot;
        try {
          slot = this.caps.acquire({ subject: principal?.kind === 'client' ? principal.subject : undefined, ip });
        } catch (err) {
          return this.refuse(socket, err);
        }
        // The raw socket closes on every path: refused by ws, closed, dropped, or reset by the client.
        socket.once('close', () => slot.release());
        this.wss.handleUpgrade(req, socket, head, (ws) => {
          socket.off('error', onError);
          this.accept(ws, principal);
        });
      },
      (err: unknown) => {
        this.log.info({ url: redactUrl(req.url ?? ''), origin: req.headers.origin, code: (err as GatewayError).code }, 'websocket handshake refused');
        this.refuse(socket, err);
      },
    );
  }

  /** Called by a connection's cleanup. */
  release(conn: WsConnection): void {
    this.connections.delete(conn);
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
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== WS_PATH) throw new NotFoundError('no such endpoint');
    if (this.draining) throw new ShuttingDownError();
    await this.rateLimits.checkPoll(ip);
    if (!originAllowed(req.headers.origin, req.headers.host, this.origins)) {
      throw new ForbiddenError('this Origin may not open a WebSocket (add it to cors.origins)');
    }
    const credential = credentialFrom(req.headers.authorization, url.searchParams.get('token') ?? undefined);
    return credential ? this.auth.authenticate(credential) : undefined;
  }

  private accept(ws: WebSocket, principal: Principal | undefined): void {
    this.sockets.add(ws);
    ws.once('close', () => this.sockets.delete(ws));
    const conn = new WsConnection(ws, this, this.log, principal);
    this.connections.add(conn);
    conn.start();
    this.log.info({ sub: principal?.subject }, 'websocket open');
    if (this.draining) conn.close(CLOSE.goingAway, 'server shutting down');
  }

  /** Writes an HTTP error answer on the raw socket and destroys it once written. */
  private refuse(socket: Duplex, err: unknown): void {
    if (socket.destroyed) return;
    const known = err instanceof GatewayError && err.expose;
    const status = known ? err.status : 500;
    const body = known ? errorBody(err.code, err.message) : errorBody('internal', 'internal error');
    if (!known) this.log.error({ err }, 'websocket handshake failed');
    const retry = known && err.retryAfter !== undefined ? `Retry-After: ${Math.ceil(err.retryAfter)}\r\n` : '';
    socket.once('finish', () => socket.destroy());
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nCache-Control: no-store\r\n${retry}\r\n${body}`,
    );
  }
}
