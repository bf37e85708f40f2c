/**
 * Server-Sent Events: one open response per client, fed by a Feed (the same waiter registry as
 * /poll, no per-connection polling). Every event's `id:` is the cursor after it, so the browser's
 * automatic reconnect (Last-Event-ID) resumes exactly. Keep-alives are `ping` events, not comments,
 * so a client can tell a stream a buffering proxy holds back from a quiet one. Each stream owns
 * exactly one cleanup (release), run on the first of: client gone, max lifetime, token expiry (an
 * `end` event says why), overflow, shutdown, subscribe failure. The event format is documented in
 * docs/PROTOCOL.md.
 */
import type { ServerResponse } from 'node:http';
import type { CursorCodec, Position } from '../cursor.js';
import type { Batch } from '../delivery.js';
import { errorBody, ForbiddenError, toWire, UnauthorizedError } from '../errors.js';
import { releaseWrittenHead } from '../http/headers.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Session, Sessions } from '../sessions.js';
import type { Store } from '../store/store.js';
import type { WaiterRegistry } from '../waiters.js';
import { Feed, type FeedSink } from './feed.js';
import type { ConnectionHub } from './hub.js';

export interface SseOptions {
  keepAliveMs: number;
  retryMs: number;
  maxLifetimeMs: number;
  maxBufferedBytes: number;
  batchLimit: number;
}

export interface SseDeps {
  store: Store;
  registry: WaiterRegistry;
  cursors: CursorCodec;
  log: Logger;
  options: SseOptions;
  sessions?: Sessions;
  metrics?: Metrics;
}

export type SseEnd = 'gone' | 'lifetime' | 'expired' | 'shutdown' | 'overflow' | 'store_unavailable' | 'disconnected';

/** Who holds an event stream: its subject, and when its credential expires (ms since the epoch). */
export interface SseHolder {
  subject: string;
  expiresAtMs: number;
  /** The token's `iat` (seconds), for revokes. */
  issuedAt?: number;
}

/** The last event of a stream whose token expired: the error body of a 401 (docs/PROTOCOL.md). */
const EXPIRED_EVENT = `event: end\ndata: ${errorBody(toWire(new UnauthorizedError('token expired')))}\n\n`;
/** The last event of a stream ended by POST /disconnect: the error body of a 403. */
const DISCONNECTED_EVENT = `event: end\ndata: ${errorBody(toWire(new ForbiddenError('disconnected by the server')))}\n\n`;

function event(name: string | undefined, id: string, data: string): string {
  return `id: ${id}\n${name ? `event: ${name}\n` : ''}data: ${data}\n\n`;
}

class SseStream implements FeedSink {
  readonly feed: Feed;
  /** Settles when the response is closed, whoever ended it. */
  readonly closed: Promise<void>;
  private lifetime?: NodeJS.Timeout;
  private released = false;
  private readonly onClose = () => this.end('gone');
  private readonly expiresAtMs: number;
  private readonly session?: Session;

  constructor(
    private readonly hub: SseHub,
    private readonly res: ServerResponse,
    holder: SseHolder,
    streams: readonly string[],
    private readonly onEnd: (end: SseEnd) => void,
  ) {
    this.expiresAtMs = holder.expiresAtMs;
    this.session = hub.deps.sessions?.open(holder.subject, 'sse', streams, () => this.end('disconnected'), holder.issuedAt);
    const o = hub.deps.options;
    // A client that left while the route was still checking its request closed `res` already.
    this.closed = res.destroyed ? Promise.resolve() : new Promise((resolve) => res.once('close', () => resolve()));
    this.feed = new Feed(this, { store: hub.deps.store, registry: hub.deps.registry, log: hub.deps.log, limit: o.batchLimit, maxBufferedBytes: o.maxBufferedBytes });
  }

  async start(positions: ReadonlyMap<string, Position>): Promise<void> {
    // Its 'close' has fired already: nobody would ever end this stream (nor shutdown's wait).
    if (this.res.destroyed) return this.end('gone');
    const o = this.hub.deps.options;
    this.res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      // nginx buffers proxied responses unless told not to; an event stream must not wait in a buffer.
      'X-Accel-Buffering': 'no',
    });
    this.res.write(`retry: ${o.retryMs}\n\n`);
    // The head went out with that write: the connection need not hold its text for its whole life.
    releaseWrittenHead(this.res);
    this.res.once('close', this.onClose);
    const expiresIn = this.expiresAtMs - Date.now();
    this.lifetime = expiresIn < o.maxLifetimeMs ? setTimeout(() => this.end('expired'), Math.max(0, expiresIn)) : setTimeout(() => this.end('lifetime'), o.maxLifetimeMs);
    try {
      await this.feed.add(positions);
    } catch (err) {
      this.hub.deps.log.warn({ err: (err as Error).message }, 'sse subscribe failed; ending the stream so the client retries');
      this.end('store_unavailable');
      return;
    }
    if (this.released) return;
    // Tells the client the subscription is live and sets its Last-Event-ID even if nothing arrives.
    const cursor = this.hub.deps.cursors.encode(this.feed.positions);
    this.res.write(event('ready', cursor, JSON.stringify({ cursor })));
  }

  /** An event, not a comment: EventSource hides comments, and the client watches for silence. */
  keepAlive(): void {
    this.res.write('event: ping\ndata: {}\n\n');
  }

  /** Per message `id: <cursor after it>`; a reset or gap is its own event, with the cursor just past it. */
  write(batch: Batch, before: ReadonlyMap<string, Position>): Promise<void> {
    const { cursors } = this.hub.deps;
    this.hub.deps.metrics?.delivered('sse', batch);
    const running = new Map(before);
    let out = '';
    for (const d of batch.deliveries) {
      const first = d.position.seq - d.messages.length;
      running.set(d.stream, { epoch: d.position.epoch, seq: first });
      if (d.reset) out += event('reset', cursors.encode(running), JSON.stringify({ stream: d.stream }));
      if (d.gap) out += event('gap', cursors.encode(running), JSON.stringify(d.gap));
      d.messages.forEach((m, i) => {
        running.set(d.stream, { epoch: d.position.epoch, seq: first + i + 1 });
        out += event(undefined, cursors.encode(running), m);
      });
    }
    return new Promise((resolve) => this.res.write(out, () => resolve()));
  }

  bufferedBytes(): number {
    return this.res.writableLength;
  }

  overflow(): void {
    this.end('overflow');
  }

  /** Ends the response (the client reconnects with Last-Event-ID) and releases everything. */
  end(reason: SseEnd): void {
    if (this.released) return;
    this.released = true;
    clearTimeout(this.lifetime);
    this.res.off('close', this.onClose);
    this.feed.close();
    this.hub.release(this);
    this.session?.end(reason === 'disconnected' || reason === 'expired' || reason === 'shutdown' ? reason : 'closed');
    this.onEnd(reason);
    const socket = this.res.socket;
    if (this.res.writableEnded || this.res.destroyed) return;
    if (reason === 'expired') this.res.write(EXPIRED_EVENT);
    else if (reason === 'disconnected') this.res.write(DISCONNECTED_EVENT);
    // On shutdown the connection goes too: the browser's reconnect must open a new one, which the
    // load balancer sends to another node, not reuse this one to reach a node that is draining.
    this.res.end(reason === 'shutdown' ? () => socket?.end() : undefined);
  }
}

export class SseHub implements ConnectionHub {
  private readonly streams = new Set<SseStream>();
  private keepAlive?: NodeJS.Timeout;
  private draining = false;

  constructor(readonly deps: SseDeps) {}

  /** Open event streams in this process. */
  get size(): number {
    return this.streams.size;
  }

  /** Live hub timers (the shared keep-alive: 0 or 1), for tests and leak checks. */
  get timers(): number {
    return this.keepAlive ? 1 : 0;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /**
   * Turns `res` into an event stream at these positions for `holder` (a session of its subject),
   * ended at its credential's expiry at the latest. The caller has validated and authorised everything: from
   * here on failures end the stream, they never become HTTP errors.
   */
  open(res: ServerResponse, positions: ReadonlyMap<string, Position>, holder: SseHolder, onEnd: (end: SseEnd) => void): void {
    const stream = new SseStream(this, res, holder, [...positions.keys()], onEnd);
    this.streams.add(stream);
    // One timer for every stream, running only while there are streams.
    this.keepAlive ??= setInterval(() => {
      for (const s of this.streams) s.keepAlive();
    }, this.deps.options.keepAliveMs);
    void stream.start(positions);
  }

  release(stream: SseStream): void {
    this.streams.delete(stream);
    if (this.streams.size === 0) {
      clearInterval(this.keepAlive);
      this.keepAlive = undefined;
    }
  }

  /** Ends every stream now and resolves once their responses are closed; later requests get 503. */
  async shutdown(): Promise<void> {
    this.draining = true;
    const streams = [...this.streams];
    for (const s of streams) s.end('shutdown');
    await Promise.all(streams.map((s) => s.closed));
  }
}
