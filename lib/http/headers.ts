/**
 * Header access for every request and answer, on the Node objects under the context (ctx.req,
 * ctx.res). Koa's ctx.get() and ctx.set() reach them through a delegate getter that is
 * megamorphic (one closure per name, one call site), lower-case the name on every call, and
 * ctx.set() allocates three arrays per header; with a dozen headers an answer that was a visible
 * share of a request's instructions (docs/PERFORMANCE.md, "The one pipeline").
 */
import type { Context } from 'koa';

/** A request header by its lower-case name; '' when absent (a repeated header is joined with ", "). */
export function requestHeader(ctx: Context, lowerName: string): string {
  const v = ctx.req.headers[lowerName];
  if (v === undefined) return '';
  return typeof v === 'string' ? v : v.join(', ');
}

/**
 * Sets (replaces) an answer header; nothing once the headers were sent (an event stream's, say).
 * Callers name headers in lower case: Node stores every name lower-cased, and a name that already
 * is one is not copied (a parked poll holds its answer's headers for its whole hold).
 */
export function setHeader(ctx: Context, name: string, value: string): void {
  const res = ctx.res;
  if (!res.headersSent) res.setHeader(name, value);
}
