/** Request parameters, from a query string or a JSON body. */
import { BadRequestError } from '../errors.js';

/** A parameter that may be given once; throws BadRequestError when a query repeats it. */
export function single(params: Record<string, unknown>, name: string): unknown {
  const v = params[name];
  if (Array.isArray(v)) throw new BadRequestError(`${name} may be given only once`);
  return v;
}

/** `streams` from a query may be repeated (`streams=a&streams=b`): the same as `streams=a,b`. */
export function streamsParam(params: Record<string, unknown>, fromQuery: boolean): unknown {
  const v = params.streams;
  return fromQuery && Array.isArray(v) ? v.join(',') : v;
}
