/**
 * Answers for routes that answer after their middleware returned: a parked poll. Koa is told to
 * keep off the response (`ctx.respond = false`), so every middleware frame of the request finishes
 * when the poll parks and a parked poll holds its context and one callback, not a suspended chain
 * of async frames, for its whole hold (docs/PERFORMANCE.md, "What a parked poll holds"). The later
 * answer passes the same rules as any other: errors rendered by renderError, then the answer-head
 * rules (lib/http/answer-head.ts); its head is collected and written in one call (CollectedHead,
 * lib/http/headers.ts), with its body, as Koa writes a string body.
 */
import type { Context } from 'koa';
import type { HeadRule } from './answer-head.js';
import { renderError } from './errors.js';
import { collectHead } from './headers.js';

export class LaterAnswers {
  /** `head` sets the headers every answer carries, as the pipeline does for the answers Koa writes. */
  constructor(private readonly head: HeadRule) {}

  /** The route returns before its answer is known; finish() writes it. */
  defer(ctx: Context): void {
    ctx.respond = false;
  }

  /** `fill` sets the answer (setBody, setHeader) as a route would; what it throws is rendered as a route's error. */
  finish(ctx: Context, fill: () => void): void {
    const answer = collectHead(ctx, () => {
      try {
        fill();
      } catch (err) {
        renderError(ctx, err);
      }
      this.head(ctx);
    });
    const res = ctx.res;
    // The client left, or shutdown's grace cut the socket: nothing to write to.
    if (res.headersSent || res.writableEnded || res.destroyed) return;
    answer.writeTo(res, ctx.method !== 'HEAD');
  }
}
