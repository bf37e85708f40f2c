/**
 * What a drain asks of every answer: while the process drains, each carries `Connection: close`.
 * Node's server.close() only closes the keep-alive sockets that are idle at that moment: one busy
 * then would otherwise stay open (and keep shutdown waiting) until the grace deadline cuts it.
 * One of the answer-head rules (lib/http/answer-head.ts).
 */
import type { Context } from 'koa';
import { setHeader } from './headers.js';

export function drainRule(isDraining: () => boolean): (ctx: Context) => void {
  return (ctx) => {
    if (isDraining()) setHeader(ctx, 'connection', 'close');
  };
}
