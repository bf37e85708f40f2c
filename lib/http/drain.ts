/**
 * What a drain needs of every request: the requests in flight are counted (the gateway's close()
 * waits for none before it closes the store), and while the process drains every answer carries
 * `Connection: close`. Node's server.close() only closes the keep-alive sockets that are idle at
 * that moment: one busy then would otherwise stay open (and keep shutdown waiting) until the
 * grace deadline cuts it.
 */
import type { Context, Next } from 'koa';
import { setHeader } from './headers.js';
import type { RequestTracker } from './request-tracker.js';

/** The rule; a parked poll's later answer (lib/http/answer-later.ts) applies it too. */
export function drainRule(isDraining: () => boolean): (ctx: Context) => void {
  return (ctx) => {
    if (isDraining()) setHeader(ctx, 'connection', 'close');
  };
}

export function drainConnections(rule: (ctx: Context) => void, requests: RequestTracker) {
  return async function drain(ctx: Context, next: Next): Promise<void> {
    requests.enter();
    try {
      await next();
    } finally {
      requests.leave();
      // Errors too: the error middleware (outside this one) renders them on the same answer.
      rule(ctx);
    }
  };
}
