/**
 * koa-router's match(), remembered for the route table's own paths.
 *
 * koa-router answers every request by testing each layer of the table in turn: a regexp and a
 * debug() call (with its rest-args array, even when debug is off) per layer, 19 layers for the
 * gateway's table, and new arrays for the result. The table is fixed once built, so for a given
 * path and method the result is always the same; this remembers it. Only paths that are in the
 * table are remembered (a request for any other path is matched as before), so the cache holds
 * at most paths x methods entries whatever the requests are. Measured in docs/PERFORMANCE.md
 * ("koa-router's match, remembered").
 */
import type Router from 'koa-router';

type Match = ReturnType<Router['match']>;

/**
 * Makes `router.match` remember its result per path of the table and method. Call it once the
 * table is complete: a layer added afterwards would not be seen for a path already remembered.
 */
export function rememberRouteMatches(router: Router): void {
  const matchAll = router.match.bind(router);
  const byPath = new Map<string, Map<string, Match>>(router.stack.map((layer) => [layer.path, new Map()]));
  router.match = (path: string, method: string): Match => {
    const byMethod = byPath.get(path);
    if (!byMethod) return matchAll(path, method);
    let found = byMethod.get(method);
    if (!found) {
      found = matchAll(path, method);
      byMethod.set(method, found);
    }
    // The router hands `path` to the request as ctx.matched, which later routers push to: a copy.
    return { path: found.path.slice(), pathAndMethod: found.pathAndMethod, route: found.route };
  };
}
