/**
 * What every answer the pipeline writes passes on its way out, in one middleware frame: an error
 * a route threw, rendered (renderError, lib/http/errors.ts); then the head every answer carries
 * (lib/http/answer-head.ts), errors included; and the count of requests in flight (the gateway's
 * close() waits for none). One frame for the three: each middleware that awaits next() costs
 * every request a promise and a koa-compose step, 470 bytes a request as two (`heap.js --alloc`,
 * docs/PERFORMANCE.md). An answer written later (`ctx.respond = false`: a parked poll, an event
 * stream) gets its head, and its errors rendered, from whoever writes it.
 */
import type { Context } from 'koa';
import type { Metrics } from '../metrics.js';
import type { HeadRule } from './answer-head.js';
import { renderError } from './errors.js';
import type { RequestTracker } from './request-tracker.js';
import type { StepNext } from './steps.js';

/** `metrics` counts each refusal by code (pollgate_errors_total). */
export function wayOut(head: HeadRule, requests: RequestTracker, metrics?: Metrics) {
  return async function wayOut(ctx: Context, next: StepNext): Promise<void> {
    // Read by renderError, which a parked poll's later answer calls too.
    if (metrics) ctx.state.metrics = metrics;
    requests.enter();
    try {
      await next(ctx);
    } catch (err) {
      renderError(ctx, err);
    } finally {
      requests.leave();
      if (ctx.respond !== false) head(ctx);
    }
  };
}
