/**
 * koa-router's dispatch, remembered for the route table's own paths.
 *
 * koa-router answers every request by testing each layer of the table in turn (a regexp and a
 * debug() call with its rest-args array, even when debug is off, per layer), then building the
 * matched layers' chain: an array spread per layer, a closure, and a koa-compose of the lot.
 * The table is fixed once built, so for a given path and method the match and the chain are
 * always the same; this remembers both and runs the remembered chain (a path's one handler, called
 * directly), with the request's own ctx.matched, params and captures set exactly as koa-router
 * sets them. Only paths that are in
 * the table and methods Node's HTTP parser knows are remembered: a request for any other path,
 * or with a method a host set (method override) or HTTP/2 carried, goes through koa-router's own
 * dispatch, so the memo holds at most paths x http.METHODS entries whatever the requests are.
 * Measured in docs/PERFORMANCE.md ("koa-router's match, remembered" and "koa-router's chain,
 * remembered").
 */
import { METHODS } from 'node:http';
import compose from 'koa-compose';
import type { Context, Middleware, Next } from 'koa';
import type Router from 'koa-router';
import { originTarget } from './target.js';

type Match = ReturnType<Router['match']>;
type Layer = Match['path'][number];

/** The methods a path's memo may hold: the ones Node's HTTP/1 parser accepts. */
const KNOWN_METHODS: ReadonlySet<string> = new Set(METHODS);

interface Remembered {
  match: Match;
  /** The matched layers' chain, made once (undefined when no layer has the method): chainOf. */
  chain?: (ctx: Context, next: Next) => unknown;
}

/** The fields koa-router's dispatch sets on a request, which its handlers and host apps read. */
interface RoutedContext {
  matched?: Layer[];
  router?: Router;
  captures?: string[];
  params?: Record<string, string>;
  routerPath?: string;
  routerName?: string | null;
  newRouterPath?: string;
  _matchedRoute?: string | RegExp;
  _matchedRouteName?: string;
  request: { params?: Record<string, string> };
}

/** What koa-router 14 has at run time that its typings (written for 7) leave out. */
interface RouterOptions {
  host?: unknown;
  opts: { routerPath?: string };
  exclusive: boolean;
}

/**
 * Whether a layer's pattern captures anything. A path like /poll does not: koa-router would match
 * its regexp again on every request, for an empty list of captures and no parameters.
 */
function captures(layer: Layer): boolean {
  const { regexp, opts } = layer as unknown as { regexp: RegExp; opts: { ignoreCaptures?: boolean } };
  // A regexp's groups, counted by matching it, or nothing, against the empty string.
  return !opts.ignoreCaptures && new RegExp(`${regexp.source}|`, regexp.flags).exec('')!.length > 1;
}

/**
 * What koa-router sets before a matched layer's handlers run, for one path (router.js, dispatch).
 * `capturing` is captures(layer): without captures, the same fields without the match.
 */
function enterLayer(ctx: Context, layer: Layer, path: string, capturing: boolean): void {
  const routed = ctx as unknown as RoutedContext;
  routed.captures = capturing ? layer.captures(path) : [];
  // koa-router's params() of no captures: the params so far, or a new object.
  routed.request.params = capturing ? (layer.params(path, routed.captures, routed.params) as Record<string, string>) : (routed.params ?? {});
  routed.params = routed.request.params;
  routed.routerPath = layer.path as string;
  routed.routerName = layer.name;
  routed._matchedRoute = layer.path;
  if (layer.name) routed._matchedRouteName = layer.name;
}

/**
 * The matched layers' chain for one path: each layer entered, then its handlers. A path of the
 * gateway's table has one layer with one handler, which is called directly: a koa-compose chain
 * made a dispatch closure and a `next` bound for each of its two steps on every request
 * (docs/PERFORMANCE.md, "The pipeline's steps, chained once").
 */
function chainOf(layers: readonly Layer[], path: string): (ctx: Context, next: Next) => unknown {
  const only = layers.length === 1 && layers[0]!.stack.length === 1 ? layers[0]! : undefined;
  if (only) {
    const handler = only.stack[0] as Middleware;
    const capturing = captures(only);
    return (ctx, next) => {
      enterLayer(ctx, only, path, capturing);
      return handler(ctx, next);
    };
  }
  const entered = (layer: Layer): Middleware => {
    const capturing = captures(layer);
    return (ctx, next) => {
      enterLayer(ctx, layer, path, capturing);
      return next();
    };
  };
  return compose(layers.flatMap((layer) => [entered(layer), ...(layer.stack as Middleware[])]));
}

/**
 * The router's middleware (router.routes()), with the match and the chain (chainOf) of each path
 * of the table and method remembered. Call it once the table is complete: a layer added
 * afterwards would not be seen for a path already remembered. The table must not route by host.
 */
export function rememberedDispatch(router: Router): Middleware {
  const { host, opts, exclusive } = router as unknown as RouterOptions;
  if (host) throw new Error('rememberedDispatch: a table that routes by host is not supported');
  const dispatch = router.routes() as Middleware;
  const byPath = new Map<string, Map<string, Remembered>>(router.stack.map((layer) => [layer.path as string, new Map()]));

  function remember(path: string, method: string): Remembered {
    const match = router.match(path, method);
    if (!match.route) return { match };
    const layers = exclusive ? [match.pathAndMethod[match.pathAndMethod.length - 1]!] : match.pathAndMethod;
    return { match, chain: chainOf(layers, path) };
  }

  return function routedDispatch(ctx: Context, next: Next) {
    const routed = ctx as unknown as RoutedContext;
    // ctx.path as originTarget reads it, which keeps no Url object on the request (lib/http/target.ts).
    const path = opts.routerPath || routed.newRouterPath || (originTarget(ctx.req.url ?? '')?.path ?? ctx.path) || routed.routerPath || '';
    // '' (no path at all) is in no table: koa-router's own dispatch decides.
    const byMethod = byPath.get(path);
    if (!byMethod || !KNOWN_METHODS.has(ctx.method)) return dispatch(ctx, next);
    let found = byMethod.get(ctx.method);
    if (!found) {
      found = remember(path, ctx.method);
      byMethod.set(ctx.method, found);
    }
    const { match, chain } = found;
    // Each request its own ctx.matched: the router hands it on, and later routers push to it.
    if (routed.matched) routed.matched.push(...match.path);
    else routed.matched = match.path.slice();
    routed.router = router;
    if (!chain) return next();
    const mostSpecific = match.pathAndMethod[match.pathAndMethod.length - 1]!;
    routed._matchedRoute = mostSpecific.path;
    if (mostSpecific.name) routed._matchedRouteName = mostSpecific.name;
    return chain(ctx, next);
  };
}
