/**
 * While the process drains, every answer carries `Connection: close`. Node's server.close() only
 * closes the keep-alive sockets that are idle at that moment: one busy then would otherwise stay
 * open (and keep shutdown waiting) until the grace deadline cuts it.
 */
import type { Context, Next } from 'koa';

/** The rule; a parked poll's later answer (lib/http/answer-later.ts) applies it too. */
export function drainRule(isDraining: () => boolean): (ctx: Context) => void {
  return (ctx) => {
    if (isDraining()) ctx.set('Connection', 'close');
  };
}

export function closeWhenDraining(rule: (ctx: Context) => void) {
  return async function drainConnections(ctx: Context, next: Next): Promise<void> {
    try {
      await next();
    } finally {
      // Errors too: the error middleware (outside this one) renders them on the same answer.
      rule(ctx);
    }
  };
}
