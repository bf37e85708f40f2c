/**
 * The path of a request target, for the HTTP pipeline and WebSocket upgrades alike. Origin-form
 * (`/poll?x`) is the norm; absolute-form (`http://host/poll`) is what a client speaking through a
 * proxy sends and a server must accept (RFC 9112 3.2.2); anything else (asterisk-form, an
 * authority, an absolute URL that does not parse) has no path: answered 400, never a 5xx.
 */
import { BadRequestError } from '../errors.js';

export interface Target {
  path: string;
  /** The query string without its '?'. */
  query: string;
}

/** The path and query of `url` (req.url), or undefined when it has none. */
export function targetOf(url: string): Target | undefined {
  if (url[0] === '/') {
    const q = url.indexOf('?');
    return q < 0 ? { path: url, query: '' } : { path: url.slice(0, q), query: url.slice(q + 1) };
  }
  if (!/^https?:\/\//i.test(url)) return undefined;
  try {
    const parsed = new URL(url);
    return { path: parsed.pathname, query: parsed.search.slice(1) };
  } catch {
    return undefined;
  }
}

/** Throws BadRequestError for a target without a path. */
export function assertTarget(url: string): Target {
  const target = targetOf(url);
  if (!target) throw new BadRequestError('the request target must be a path such as /poll (or an absolute http URL)');
  return target;
}

/** What makes parseurl (under Koa's ctx.path and ctx.querystring) hand a path to url.parse. */
const PARSED_SLOWLY = /[\t\n\f\r #\u00a0\ufeff]/;

/**
 * The path and query of an origin-form target (`/poll?x`), exactly as Koa's ctx.path and
 * ctx.querystring read them (parseurl: the path up to the first '?', the query after it), or
 * undefined for any target parseurl would read otherwise: the caller then asks Koa. Koa's getters
 * cache parseurl's Url object on the request, and a parked poll held it, with its strings, for its
 * whole hold, so the young generation copied and promoted it (docs/PERFORMANCE.md, "A request's
 * URL, read and not kept"). What this returns is not kept.
 */
export function originTarget(url: string): Target | undefined {
  return url[0] === '/' && !PARSED_SLOWLY.test(url) ? targetOf(url) : undefined;
}
