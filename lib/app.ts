/**
 * createHandler(deps): the request handler. The Koa app is a readable list of middleware and
 * routes; the fast path (lib/http/fast-path.ts) serves the hot endpoints with the same route
 * functions and rules, without Koa. No I/O of its own.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import Koa from 'koa';
import Router from 'koa-router';
import type { Auth } from './auth.js';
import type { Config } from './config.js';
import type { CursorCodec } from './cursor.js';
import { BadRequestError, MethodNotAllowedError, NotFoundError } from './errors.js';
import { cors } from './http/cors.js';
import { closeWhenDraining } from './http/drain.js';
import { errorHandler } from './http/errors.js';
import { fastPath } from './http/fast-path.js';
import { requestLog } from './http/request-log.js';
import { staticFiles } from './http/static.js';
import type { ConnectionCaps } from './limits/connection-caps.js';
import type { RateLimits } from './limits/rate-limits.js';
import type { Logger } from './log.js';
import { demoTokenRoute } from './routes/demo.js';
import { healthRoute, readyRoute } from './routes/health.js';
import { pollRoute } from './routes/poll.js';
import { sendRoute } from './routes/send.js';
import { sseRoute } from './routes/sse.js';
import { statsRoute } from './routes/stats.js';
import type { Store } from './store/store.js';
import type { LongPolls } from './transports/long-poll.js';
import type { SseHub } from './transports/sse.js';
import type { WaiterRegistry } from './waiters.js';

export interface AppDeps {
  config: Config;
  log: Logger;
  store: Store;
  auth: Auth;
  cursors: CursorCodec;
  longPolls: LongPolls;
  registry: WaiterRegistry;
  sse: SseHub;
  staticDir: string;
  isDraining: () => boolean;
  rateLimits: RateLimits;
  /** Open parked polls, SSE streams and WebSockets per subject, IP and process. */
  caps: ConnectionCaps;
}

function only(...allow: string[]) {
  // koa-router answers HEAD with the GET route, so every GET route allows HEAD too.
  const allowed = allow.includes('GET') ? [...allow, 'HEAD'] : allow;
  return () => {
    throw new MethodNotAllowedError(`use ${allow.join(' or ')}`, allowed);
  };
}

/** The server's request listener: the fast path when it takes the request, else Koa. */
export function createHandler(deps: AppDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const { app, poll, send, sse, fastServed } = createApp(deps);
  const koa = app.callback();
  if (!deps.config.server.fastPath) return koa;
  const fast = fastPath({ log: deps.log, cors: deps.config.cors, trustProxyHops: deps.config.server.trustProxyHops, isDraining: deps.isDraining, poll, send, sse, served: fastServed });
  return (req, res) => {
    if (!fast(req, res)) void koa(req, res);
  };
}

export function createApp(deps: AppDeps) {
  const { config } = deps;
  // ctx.ip keys the per-IP caps and limits: trust X-Forwarded-For only for the configured proxy hops.
  const hops = config.server.trustProxyHops;
  const app = new Koa({ proxy: hops > 0, maxIpsCount: hops });
  app.silent = true;
  app.on('error', (err: Error) => deps.log.warn({ err: err.message }, 'response error'));

  const router = new Router();
  const fastServed = { count: 0 };
  const poll = pollRoute({
    store: deps.store,
    auth: deps.auth,
    cursors: deps.cursors,
    longPolls: deps.longPolls,
    limits: config.poll,
    bodyBytes: config.limits.bodyBytes,
    bodyTimeoutMs: config.limits.bodyTimeoutMs,
    jsonp: config.jsonp.enabled,
    rateLimits: deps.rateLimits,
    caps: deps.caps,
  });
  const send = sendRoute({ store: deps.store, auth: deps.auth, limits: config.limits, rateLimits: deps.rateLimits });
  router.post('/send', send);
  router.all('/send', only('POST'));
  router.get('/poll', poll);
  router.post('/poll', poll);
  router.all('/poll', only('GET', 'POST'));
  const sse = sseRoute({ rateLimits: deps.rateLimits, caps: deps.caps, store: deps.store, auth: deps.auth, cursors: deps.cursors, sse: deps.sse, maxStreams: config.poll.maxStreams, retryMs: config.sse.retryMs });
  router.get('/sse', sse);
  router.all('/sse', only('GET'));
  // GET /ws is answered on the server's 'upgrade' event (lib/transports/websocket.ts); a plain GET lands here.
  router.all('/ws', () => {
    throw new BadRequestError('GET /ws needs a WebSocket upgrade (Connection: Upgrade, Upgrade: websocket)');
  });
  router.get('/healthz', healthRoute());
  router.all('/healthz', only('GET'));
  router.get('/readyz', readyRoute({ store: deps.store, isDraining: deps.isDraining }));
  router.all('/readyz', only('GET'));
  router.get('/stats', statsRoute({ auth: deps.auth, store: deps.store, registry: deps.registry, longPolls: deps.longPolls, fastServed }));
  router.all('/stats', only('GET'));
  if (config.auth.demoToken) {
    router.get('/demo/token', demoTokenRoute({ auth: deps.auth, ttlSeconds: config.auth.demoTokenTtlSeconds }));
    router.all('/demo/token', only('GET'));
  }

  app.use(requestLog(deps.log));
  app.use(closeWhenDraining(deps.isDraining));
  app.use(errorHandler());
  app.use(cors(config.cors));
  app.use(router.routes());
  app.use(staticFiles(deps.staticDir));
  app.use(() => {
    throw new NotFoundError('no such endpoint');
  });
  return { app, poll, send, sse, fastServed };
}
