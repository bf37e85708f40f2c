/**
 * The one pipeline: every HTTP endpoint of the gateway, as one Koa middleware that a host app
 * mounts (createGateway().middleware()) and `npm start` serves alone. In order: the route table's
 * gate (a request for any other path goes to the host's next middleware untouched), the request
 * log, the way out (errors rendered, the answer's head: lib/http/way-out.ts), CORS preflights, a
 * request target with a path, then the routes. No I/O of its own.
 */
import type { Context, Middleware, Next } from 'koa';
import Router from 'koa-router';
import type { Auth } from './auth.js';
import type { Config } from './config.js';
import type { CursorCodec } from './cursor.js';
import { BadRequestError, MethodNotAllowedError, NotFoundError } from './errors.js';
import { LaterAnswers } from './http/answer-later.js';
import type { BodyLimits } from './http/body.js';
import { answerHead, type HeadRule } from './http/answer-head.js';
import { Cors } from './http/cors.js';
import { drainRule } from './http/drain.js';
import { requestHeaders, requestLog } from './http/request-log.js';
import { rememberedDispatch } from './http/route-dispatch.js';
import type { RequestTracker } from './http/request-tracker.js';
import { staticRoute, type StaticFile } from './http/static.js';
import { wayOut } from './http/way-out.js';
import { chainSteps, type Step, type StepNext } from './http/steps.js';
import { assertTarget, targetOf } from './http/target.js';
import type { RateLimits } from './limits/rate-limits.js';
import type { Disconnects } from './disconnect.js';
import type { Logger } from './log.js';
import type { Messages } from './messages.js';
import type { Metrics } from './metrics.js';
import type { Presence } from './presence.js';
import { demoTokenRoute } from './routes/demo.js';
import { disconnectRoute } from './routes/disconnect.js';
import { historyRoute } from './routes/history.js';
import { metricsRoute } from './routes/metrics.js';
import { presenceRoute } from './routes/presence.js';
import { healthRoute, readyRoute } from './routes/health.js';
import { pollRoute } from './routes/poll.js';
import { sendRoute } from './routes/send.js';
import { sseRoute } from './routes/sse.js';
import { statsRoute } from './routes/stats.js';
import type { Store } from './store/store.js';
import type { Subscriptions } from './subscriptions.js';
import type { LongPolls } from './transports/long-poll.js';
import type { SseHub } from './transports/sse.js';
import type { WsHub } from './transports/websocket.js';
import type { WaiterRegistry } from './waiters.js';

export interface PipelineDeps {
  config: Config;
  log: Logger;
  store: Store;
  auth: Auth;
  cursors: CursorCodec;
  subscriptions: Subscriptions;
  messages: Messages;
  rateLimits: RateLimits;
  registry: WaiterRegistry;
  longPolls: LongPolls;
  sse: SseHub;
  websockets: WsHub;
  staticFiles: readonly StaticFile[];
  isDraining: () => boolean;
  presence: Presence;
  disconnects: Disconnects;
  metrics: Metrics;
  /** The body cap and the one deadline queue of every body read (the gateway stops it at close). */
  body: BodyLimits;
}

export interface MiddlewareOptions {
  /**
   * true (default): a request for a path the gateway does not serve goes to the next middleware,
   * untouched. false: the gateway answers it with a JSON 404 (the standalone server).
   */
  fallthrough?: boolean;
}

/**
 * One route layer per path, choosing its handler by method (HEAD is answered by GET's handler,
 * with no body); any other method is a 405 with Allow. koa-router tests every layer's pattern
 * on every request, so one layer a path, not one a method plus a 405 layer (docs/PERFORMANCE.md).
 */
function byMethod(handlers: Readonly<Record<string, Middleware>>): Middleware {
  const methods = Object.keys(handlers);
  const allowed = handlers.GET ? [...methods, 'HEAD'] : methods;
  const table = new Map(Object.entries(handlers));
  if (handlers.GET) table.set('HEAD', handlers.GET);
  return (ctx, next) => {
    const handler = table.get(ctx.method);
    if (!handler) throw new MethodNotAllowedError(`use ${methods.join(' or ')}`, allowed);
    return handler(ctx, next);
  };
}

function notFound(): never {
  throw new NotFoundError('no such endpoint');
}

/** Before the router (which would throw a plain TypeError on an unparseable target): a 400. */
function pathRequired(ctx: Context, next: StepNext): unknown {
  assertTarget(ctx.req.url ?? '');
  return next(ctx);
}

/** The route table: every path the gateway serves, under the mount. */
function routes(deps: PipelineDeps, head: HeadRule, requests: RequestTracker): Router {
  const { config } = deps;
  const mount = config.mount === '/' ? '' : config.mount;
  const hops = config.server.trustProxyHops;
  const body = deps.body;
  // Strict and case-sensitive, so the router and the gate agree on every path.
  const router = new Router({ strict: true, sensitive: true });
  const route = (path: string, handlers: Record<string, Middleware>) => router.all(mount + path, byMethod(handlers));

  const poll = pollRoute({
    auth: deps.auth, cursors: deps.cursors, subscriptions: deps.subscriptions, longPolls: deps.longPolls, rateLimits: deps.rateLimits,
    limits: config.poll, body, jsonp: config.jsonp.enabled,
    trustProxyHops: hops, later: new LaterAnswers(head), metrics: deps.metrics,
  });
  route('/poll', { GET: poll, POST: poll });
  route('/send', { POST: sendRoute({ auth: deps.auth, messages: deps.messages, body }) });
  route('/sse', {
    GET: sseRoute({ auth: deps.auth, subscriptions: deps.subscriptions, rateLimits: deps.rateLimits, sse: deps.sse, maxStreams: config.poll.maxStreams, retryMs: config.sse.retryMs, trustProxyHops: hops, answerHead: head }),
  });
  // An upgrade to /ws is taken on the server's 'upgrade' event (lib/transports/websocket.ts); a plain request lands here.
  router.all(mount + '/ws', () => {
    throw new BadRequestError('GET /ws needs a WebSocket upgrade (Connection: Upgrade, Upgrade: websocket)');
  });
  route('/history', { GET: historyRoute({ auth: deps.auth, rateLimits: deps.rateLimits, trustProxyHops: hops, store: deps.store, cursors: deps.cursors, subscriptions: deps.subscriptions, maxLimit: config.poll.maxLimit, answerBytes: config.limits.answerBytes }) });
  route('/presence', { GET: presenceRoute({ auth: deps.auth, rateLimits: deps.rateLimits, trustProxyHops: hops, presence: deps.presence, subscriptions: deps.subscriptions }) });
  route('/disconnect', { POST: disconnectRoute({ auth: deps.auth, disconnects: deps.disconnects, body }) });
  route('/metrics', { GET: metricsRoute({ auth: deps.auth, metrics: deps.metrics }) });
  route('/healthz', { GET: healthRoute() });
  route('/readyz', { GET: readyRoute({ store: deps.store, isDraining: deps.isDraining }) });
  route('/stats', { GET: statsRoute({ auth: deps.auth, store: deps.store, registry: deps.registry, longPolls: deps.longPolls, websockets: deps.websockets, sse: deps.sse, requests }) });
  if (config.auth.demoToken) route('/demo/token', { GET: demoTokenRoute({ auth: deps.auth, ttlSeconds: config.auth.demoTokenTtlSeconds }) });
  for (const file of deps.staticFiles) route(file.path, { GET: staticRoute(file) });
  // The demo page loads its files by relative URL: under a mount it must be opened as /rt/, not /rt.
  if (mount) {
    route('', {
      GET: (ctx) => {
        ctx.redirect(`${mount}/`);
        ctx.status = 301;
      },
    });
  }
  return router;
}

/**
 * Builds the pipeline; `middleware(options)` returns it as Koa middleware. `tracker` counts the
 * requests inside it, so the gateway's close() can wait for them.
 */
export function createPipeline(deps: PipelineDeps, tracker: RequestTracker) {
  const cors = new Cors(deps.config.cors);
  const head = answerHead([requestHeaders, cors.answerHeaders, drainRule(deps.isDraining)]);
  const router = routes(deps, head, tracker);
  const paths = new Set(router.stack.map((layer) => layer.path));
  // rememberedDispatch is the last step: it goes on (to notFound) only for a path and method
  // that no route answers, and with Koa's next() it passes no context; notFound needs none.
  const pipeline = chainSteps([requestLog(deps.log), wayOut(head, tracker, deps.metrics), cors.preflight(), pathRequired, rememberedDispatch(router) as Step], notFound);
  return (options: MiddlewareOptions = {}): Middleware => {
    const fallthrough = options.fallthrough ?? true;
    return function pollgate(ctx: Context, next: Next): Promise<void> {
      if (!fallthrough) return pipeline(ctx);
      // A target without a path is not one of ours: the host decides (the standalone server answers 400).
      const target = targetOf(ctx.req.url ?? '');
      return target && paths.has(target.path) ? pipeline(ctx) : next();
    };
  };
}
