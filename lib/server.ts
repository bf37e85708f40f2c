/**
 * The standalone server (`npm start`, the `pollgate` bin, and tests): a gateway mounted in a Koa
 * app of its own that answers every other path with the gateway's 404, on an http.Server with the
 * configured timeouts, where a request Node's parser refuses still gets a JSON error. shutdown()
 * is the SIGTERM drain: the listener closes, the gateway drains (lib/gateway.ts), idle and spare
 * connections are closed, connections still open at the grace deadline are cut, then the store is
 * closed.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import Koa from 'koa';
import type { Config } from './config.js';
import { GatewayCore, type GatewayParts } from './gateway.js';
import { announceDemoToken } from './routes/demo.js';
import { withLightFinishWatch } from './http/finish-watch.js';
import { composeSole } from './http/steps.js';

export interface RunningGateway extends GatewayCore {
  server: Server;
  port: number;
  /** Drains and closes; resolves when everything is released. Safe to call twice. */
  shutdown(): Promise<void>;
}

/** How long shutdown lets a connection that has sent nothing yet start its request (ms). */
const UNUSED_SOCKET_WAIT_MS = 500;

export async function start(config: Config, parts: GatewayParts = {}): Promise<RunningGateway> {
  const gateway = await GatewayCore.create(config, parts);
  announceDemoToken(config, gateway.log);
  // Koa's own `compose` option, for the app's one middleware (composeSole).
  const app = new Koa({ compose: composeSole } as ConstructorParameters<typeof Koa>[0]);
  // The gateway renders every error itself; nothing reaches Koa's default handler.
  app.silent = true;
  app.use(gateway.middleware({ fallthrough: false }));
  const server = createServer({ connectionsCheckingInterval: config.server.connectionsCheckingIntervalMs }, withLightFinishWatch(app.callback()));
  server.keepAliveTimeout = config.server.keepAliveTimeoutMs;
  server.headersTimeout = config.server.headersTimeoutMs;
  server.requestTimeout = config.server.requestTimeoutMs;
  gateway.attach(server, { fallthrough: false, clientErrors: true });
  const unused = trackUnusedSockets(server);
  try {
    await listen(server, config);
  } catch (err) {
    await gateway.close();
    throw err;
  }
  const port = (server.address() as AddressInfo).port;

  let closing: Promise<void> | undefined;
  const shutdown = () =>
    (closing ??= (async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      const drained = gateway.drain();
      server.closeIdleConnections();
      const grace = setTimeout(() => server.closeAllConnections(), config.server.shutdownGraceMs);
      await drained;
      // Ended event streams and answered polls leave idle keep-alive connections behind.
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
      await gateway.close();
    })());

  return Object.assign(gateway, { server, port, shutdown });
}

function listen(server: Server, config: Config): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/**
 * Connections that never sent a request (browser preconnects, a fetch pool's spare socket) are
 * not "idle" to Node, so closeIdleConnections() leaves them and they would hold shutdown for the grace.
 */
function trackUnusedSockets(server: Server): Set<Socket> {
  const unused = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    unused.add(socket);
    socket.once('close', () => unused.delete(socket));
  });
  server.on('request', (req) => unused.delete(req.socket));
  server.prependListener('upgrade', (req) => unused.delete(req.socket));
  return unused;
}
