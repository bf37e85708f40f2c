/**
 * The pipeline's own steps, chained once when the pipeline is built (chainSteps).
 *
 * koa-compose chains middleware per request: each call makes a dispatch closure, and each step
 * gets a `next` bound for that request. For the pipeline's fixed steps that was 360 to 960
 * bytes a request (`heap.js --alloc`, with and without inlining: docs/PERFORMANCE.md, "The
 * pipeline's steps, chained once"). A step here is Koa middleware whose `next` takes the context
 * along, so each step's `next` can be the following step itself, made once.
 */
import type { Context, Middleware } from 'koa';
import compose from 'koa-compose';

/** What a step calls to go on: the following step, given the same context. */
export type StepNext = (ctx: Context) => unknown;

/**
 * A step: Koa middleware that passes the context to `next` (Koa's own next ignores it, so a step
 * works as plain middleware too). It calls `next` at most once, with the context it was given.
 */
export type Step = (ctx: Context, next: StepNext) => unknown;

/**
 * The steps in order, then `last`, as one function of the context: a promise, also when a step
 * throws or answers without one.
 */
export function chainSteps(steps: readonly Step[], last: StepNext): (ctx: Context) => Promise<void> {
  let chained = last;
  for (let i = steps.length - 1; i >= 0; i--) {
    const step = steps[i]!;
    const next = chained;
    chained = (ctx) => step(ctx, next);
  }
  const first = chained;
  return (ctx) => {
    try {
      return Promise.resolve(first(ctx)) as Promise<void>;
    } catch (err) {
      return Promise.reject(err);
    }
  };
}

/** What the end of a Koa chain gives a middleware that calls `next()`: nothing, settled. */
const CHAIN_END: Promise<void> = Promise.resolve();

/**
 * Koa's `compose` option for an app whose one middleware is the gateway (the standalone server,
 * lib/server.ts): that middleware, chained once (chainSteps), with one `next` for every request.
 * koa-compose made a dispatch closure and bound a `next` for each request, for a chain of one
 * (docs/PERFORMANCE.md, "The standalone app's chain of one"). A longer list is koa-compose's.
 * Unlike koa-compose it takes the middleware as it is at callback() (an app.use after that is not
 * seen) and does not refuse a `next()` called twice; the standalone app does neither.
 */
export function composeSole(middleware: readonly Middleware[]): (ctx: Context) => Promise<unknown> {
  if (middleware.length !== 1) return compose(middleware as Middleware[]) as (ctx: Context) => Promise<unknown>;
  return chainSteps([middleware[0] as unknown as Step], () => CHAIN_END);
}
