/**
 * While the process drains, every answer carries `Connection: close`. Node's server.close() only
 * closes the keep-alive sockets that are idle at that moment: one busy then would otherwise stay
 * open (and keep shutdown waiting) until the grace deadline cuts it.
 */
import type { Context, Next } from 'koa';

export function closeWhenDraining(isDraining: () => boolean) {
  return async function drainConnections(ctx: Context, next: Next): Promise<void> {
    await next();
    if (isDraining()) ctx.set('Connection', 'close');
  };
}
