/** Request parameters, from a query string or a JSON body. */
import { parse } from 'node:querystring';
import type { Context } from 'koa';
import { BadRequestError } from '../errors.js';
import { originTarget } from './target.js';

const NO_PARAMETERS: Readonly<Record<string, unknown>> = Object.freeze(Object.create(null));

/**
 * The parameters of the request's query, as Koa's ctx.query gives them (decoded, '+' a space, a
 * repeated name an array), for every route. Parsed by node:querystring rather than through
 * ctx.query, which builds a URLSearchParams and defines each key on a new object (about three
 * times the CPU), and caches the result on the request: a parked poll then held its parsed query
 * for its whole hold, and the young generation copied and promoted it (docs/PERFORMANCE.md,
 * "What a scavenge promotes"). The query string is read by originTarget, not through Koa's
 * ctx.querystring, for the same reason. Nothing here is kept.
 */
export function queryParams(ctx: Context): Readonly<Record<string, unknown>> {
  const query = originTarget(ctx.req.url ?? '')?.query ?? ctx.querystring;
  // maxKeys 0: every pair, as Koa's parser; the request line's size bounds them.
  return query ? parse(query, '&', '=', { maxKeys: 0 }) : NO_PARAMETERS;
}

/**
 * A parameter that may be given once; throws BadRequestError when a query repeats it. A JSON
 * body's `null` is no value: `{"cursor": null}` from a client that has no cursor yet is the
 * first poll, not a malformed one.
 */
export function single(params: Record<string, unknown>, name: string): unknown {
  const v = params[name];
  if (Array.isArray(v)) throw new BadRequestError(`${name} may be given only once`);
  return v === null ? undefined : v;
}

/** `streams` from a query may be repeated (`streams=a&streams=b`): the same as `streams=a,b`. */
export function streamsParam(params: Record<string, unknown>, fromQuery: boolean): unknown {
  const v = params.streams;
  return fromQuery && Array.isArray(v) ? v.join(',') : v;
}
