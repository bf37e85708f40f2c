/**
 * The standalone server's watch on when each response is done, put in place before Koa asks
 * on-finished for one.
 *
 * Koa's handleRequest asks on-finished to watch every response, so that an error of its socket
 * reaches ctx.onerror. on-finished (through ee-first) adds four listeners to the response and its
 * socket, with closures and arrays for each, and a parked poll holds them for its whole hold:
 * 2.5 of the 6.8 KB a parked poll held, and 9% of what a request allocated (heap.js --held and
 * --alloc, docs/PERFORMANCE.md "Koa's watch on every response"). For this server that watch does
 * nothing: the app is silent, and once the socket failed there is no answer left to write.
 *
 * on-finished keeps its watch in the response's `__onFinished`, a queue of listeners called once,
 * and adds none when one is there. This one is a queue and one 'close' listener: a ServerResponse
 * emits 'close' once, after it finished or when its socket closed first. What it changes for a
 * listener: it is called at 'close', in the same or the next tick after 'finish', and without the
 * socket's error. Koa's other use, destroying a stream body once the response is done, still runs.
 * A host app that mounts the gateway keeps on-finished's own watch: this is its server's choice.
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';

type FinishListener = (err: Error | undefined, res: ServerResponse) => void;

/**
 * A watch on one response, and its own queue: on-finished pushes to `watch.queue`. The first
 * listener (Koa's, always) is kept in a field: an array that starts empty takes room for 17 on
 * its first push, 152 bytes that a parked poll would hold.
 */
class FinishWatch {
  private first?: FinishListener;
  private more?: FinishListener[];

  get queue(): this {
    return this;
  }

  push(listener: FinishListener): void {
    if (!this.first) this.first = listener;
    else (this.more ??= []).push(listener);
  }

  tell(res: ServerResponse): void {
    this.first?.(undefined, res);
    if (this.more) for (const listener of this.more) listener(undefined, res);
  }
}

/** on-finished's field (2.x): a watch already in place, whose `queue` it pushes to. */
interface Watched extends ServerResponse {
  __onFinished?: { queue: { push(listener: FinishListener): void } | null } | null;
}

/** `handle` (Koa's app.callback()) with every response watched as above. */
export function withLightFinishWatch(handle: RequestListener): RequestListener {
  return function lightlyWatched(req: IncomingMessage, res: ServerResponse) {
    (res as Watched).__onFinished = new FinishWatch();
    // One shared function, not a closure per response: 'close' calls it with the response as this.
    res.on('close', tellFinished);
    return handle(req, res);
  };
}

function tellFinished(this: Watched): void {
  const watch = this.__onFinished;
  if (!(watch instanceof FinishWatch)) return;
  // A listener added from here on finds the response finished; on-finished then calls it itself.
  this.__onFinished = null;
  watch.tell(this);
}
