/**
 * One WebSocket client: authenticates (upgrade credentials or the first frame), handles JSON frames
 * one at a time, and streams its subscriptions through a Feed. Owns exactly one cleanup
 * (release) that drops the feed's waiters, the auth timer, the heartbeat membership and the hub's
 * reference; it runs on the first of: close frame, socket close, heartbeat death, overflow, shutdown.
 * The frames and close codes are documented in docs/PROTOCOL.md.
 */
import type { RawData, WebSocket } from 'ws';
import type { Principal } from '../auth.js';
import { BadRequestError, ForbiddenError, GatewayError, LimitExceededError, RateLimitedError, UnauthorizedError } from '../errors.js';
import type { Logger } from '../log.js';
import { parseMessage } from '../routes/send.js';
import { positionsOf } from '../routes/poll.js';
import { parseStreamList } from '../streams.js';
import { messageTail } from '../store/store.js';
import { batchJson } from '../wire.js';
import type { Batch } from '../delivery.js';
import { Feed, type FeedSink } from './feed.js';
import type { HeartbeatMember } from './heartbeat.js';
import type { WsHub } from './websocket.js';

/** Close codes the gateway sends (4000-4999 is the application range of RFC 6455); ws itself sends 1009. */
export const CLOSE = {
  goingAway: 1001,
  tooSlow: 4008,
  unauthorized: 4401,
} as const;

/** Frames handled or queued at once; above this the socket stops being read until the queue drains. */
const MAX_IN_FLIGHT = 32;
const REF_MAX_CHARS = 128;

type Frame = Record<string, unknown>;
type Ref = string | number | undefined;

function isObject(v: unknown): v is Frame {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A close reason is at most 123 bytes (RFC 6455 5.5); ours are ASCII. */
function reasonOf(message: string): string {
  return message.length > 123 ? `${message.slice(0, 120)}...` : message;
}

export class WsConnection implements HeartbeatMember, FeedSink {
  readonly feed: Feed;
  private principal?: Principal;
  private authTimer?: NodeJS.Timeout;
  private inbound: Promise<void> = Promise.resolve();
  private inFlight = 0;
  private tokens: number;
  private refilledAt = Date.now();
  private released = false;
  private readonly openedAt = Date.now();

  constructor(private readonly ws: WebSocket, private readonly hub: WsHub, private readonly log: Logger, principal?: Principal) {
    this.principal = principal;
    this.tokens = hub.config.ws.sendsPerSecond;
    this.feed = new Feed(this, {
      store: hub.store,
      registry: hub.registry,
      log,
      limit: hub.config.ws.batchLimit,
      maxBufferedBytes: hub.config.ws.maxBufferedBytes,
    });
  }

  get subject(): string | undefined {
    return this.principal?.subject;
  }

  start(): void {
    this.ws.on('message', (data, isBinary) => this.onFrame(data, isBinary));
    this.ws.on('pong', () => this.hub.heartbeat.alive(this));
    // Errors (a frame over maxPayload, a protocol violation) are followed by 'close'.
    this.ws.on('error', (err) => this.log.debug({ err: err.message }, 'websocket error'));
    this.ws.once('close', (code) => {
      this.release();
      this.log.info({ sub: this.subject, code, ms: Date.now() - this.openedAt }, 'websocket closed');
    });
    this.hub.heartbeat.add(this);
    if (!this.principal) {
      this.authTimer = setTimeout(() => this.close(CLOSE.unauthorized, 'no auth frame in time'), this.hub.config.ws.authTimeoutMs);
    }
  }

  ping(): void {
    this.ws.ping();
  }

  dead(): void {
    this.log.info({ sub: this.subject }, 'websocket missed pongs: dropped');
    this.release();
    // The peer is not answering: a closing handshake would only wait for closeTimeout.
    this.ws.terminate();
  }

  /** Starts the closing handshake with a code and reason, releasing everything now. */
  close(code: number, reason: string): void {
    this.release();
    this.ws.close(code, reasonOf(reason));
  }

  // FeedSink

  write(batch: Batch): Promise<void> {
    const json = batchJson(batch, this.hub.cursors.encode(batch.positions), '"type":"messages",');
    return new Promise((resolve) => this.ws.send(json, () => resolve()));
  }

  bufferedBytes(): number {
    return this.ws.bufferedAmount;
  }

  overflow(): void {
    this.log.info({ sub: this.subject, buffered: this.ws.bufferedAmount }, 'websocket client too slow: closed');
    this.close(CLOSE.tooSlow, `too slow: more than ${this.hub.config.ws.maxBufferedBytes} bytes unread; resume with your cursor`);
  }

  /** The one cleanup. Idempotent. */
  private release(): void {
    if (this.released) return;
    this.released = true;
    clearTimeout(this.authTimer);
    this.feed.close();
    this.hub.heartbeat.delete(this);
    this.hub.release(this);
  }

  private onFrame(data: RawData, isBinary: boolean): void {
    this.hub.heartbeat.alive(this);
    if (this.released) return;
    if (isBinary) return this.sendError(new BadRequestError('binary frames are not supported: send JSON text frames'));
    let frame: unknown;
    try {
      frame = JSON.parse(data.toString());
    } catch {
      return this.sendError(new BadRequestError('frame is not valid JSON'));
    }
    if (!isObject(frame)) return this.sendError(new BadRequestError('a frame must be a JSON object with a "type"'));
    const ref = frame.ref;
    if (ref !== undefined && !((typeof ref === 'string' && ref.length <= REF_MAX_CHARS) || (typeof ref === 'number' && Number.isFinite(ref)))) {
      return this.sendError(new BadRequestError(`ref must be a string of at most ${REF_MAX_CHARS} characters or a number`));
    }
    // Counted on arrival, so a flood is refused before it queues.
    if (frame.type === 'send' && this.principal && !this.takeToken()) {
      return this.sendError(new RateLimitedError(`at most ${this.hub.config.ws.sendsPerSecond} sends per second`, 1), ref);
    }
    if (++this.inFlight >= MAX_IN_FLIGHT) this.ws.pause();
    this.inbound = this.inbound
      .then(() => this.handle(frame as Frame, ref))
      .catch((err: unknown) => this.sendError(err, ref))
      .finally(() => {
        if (--this.inFlight < MAX_IN_FLIGHT / 2 && this.ws.isPaused) this.ws.resume();
      });
  }

  private async handle(frame: Frame, ref: Ref): Promise<void> {
    if (this.released) return;
    if (frame.type === 'auth') return this.onAuth(frame);
    if (!this.principal) {
      this.close(CLOSE.unauthorized, 'authenticate first: {"type":"auth","token":"..."}');
      return;
    }
    switch (frame.type) {
      case 'subscribe':
        return this.onSubscribe(frame, ref);
      case 'unsubscribe':
        return this.onUnsubscribe(frame, ref);
      case 'send':
        return this.onSend(frame, ref);
      case 'ping':
        return this.sendJson({ type: 'pong', ref });
      default: {
        // Never String() a client value: {"toString":"x"} makes it throw (socket.io-parser CVE-2023-32695).
        const type = typeof frame.type === 'string' ? JSON.stringify(frame.type).slice(0, 40) : `(a ${frame.type === null ? 'null' : typeof frame.type})`;
        throw new BadRequestError(`unknown frame type ${type}: expected subscribe, unsubscribe, send or ping`);
      }
    }
  }

  private async onAuth(frame: Frame): Promise<void> {
    if (this.principal) throw new BadRequestError('already authenticated');
    try {
      if (typeof frame.token !== 'string' || frame.token === '') throw new UnauthorizedError('auth frame needs a "token" string');
      this.principal = await this.hub.auth.authenticate(frame.token);
    } catch (err) {
      this.close(CLOSE.unauthorized, err instanceof GatewayError ? err.message : 'unauthorized');
      return;
    }
    clearTimeout(this.authTimer);
    this.sendJson({ type: 'authenticated', subject: this.principal.subject });
  }

  private async onSubscribe(frame: Frame, ref: Ref): Promise<void> {
    const { maxSubscriptions } = this.hub.config.ws;
    const streams = parseStreamList(frame.streams, maxSubscriptions);
    for (const s of streams) if (!this.principal!.canRead(s)) throw new ForbiddenError(`not allowed to subscribe to stream "${s}"`);
    const fresh = streams.filter((s) => !this.feed.positions.has(s));
    if (this.feed.size + fresh.length > maxSubscriptions) {
      throw new LimitExceededError(`a connection may subscribe to at most ${maxSubscriptions} streams (${this.feed.size} now)`);
    }
    if (frame.cursor !== undefined && typeof frame.cursor !== 'string') throw new BadRequestError('cursor must be a string');
    const since = frame.since ?? 'now';
    if (since !== 'now' && since !== 'earliest') throw new BadRequestError('since must be "earliest" or "now"');
    const cursor = frame.cursor === '' ? undefined : frame.cursor;
    const start = await positionsOf(this.hub, { streams: fresh, cursor, since });
    await this.feed.add(start);
    this.sendJson({ type: 'subscribed', streams, cursor: this.hub.cursors.encode(this.feed.positions), ref });
  }

  private async onUnsubscribe(frame: Frame, ref: Ref): Promise<void> {
    const streams = parseStreamList(frame.streams, this.hub.config.ws.maxSubscriptions);
    this.feed.remove(streams);
    this.sendJson({ type: 'unsubscribed', streams, cursor: this.hub.cursors.encode(this.feed.positions), ref });
  }

  private async onSend(frame: Frame, ref: Ref): Promise<void> {
    if (frame.streams !== undefined) throw new BadRequestError('a send frame names one "stream" (use POST /send to fan out)');
    const m = parseMessage(frame, this.hub.config.limits, 'send');
    const stream = m.streams[0]!;
    if (!this.principal!.canWrite(stream)) throw new ForbiddenError(`not allowed to send to stream "${stream}"`);
    const [r] = await this.hub.store.append(stream, [{ id: m.id, tail: messageTail(m.id, Date.now(), m.dataJson) }]);
    this.sendJson({ type: 'ack', id: r!.id, seq: r!.seq, stream, duplicate: r!.duplicate || undefined, ref });
  }

  /** Token bucket: `sendsPerSecond` a second, with a burst of as many. */
  private takeToken(): boolean {
    const rate = this.hub.config.ws.sendsPerSecond;
    const now = Date.now();
    this.tokens = Math.min(rate, this.tokens + ((now - this.refilledAt) / 1000) * rate);
    this.refilledAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  private sendError(err: unknown, ref?: Ref): void {
    let code = 'internal';
    let message = 'internal error';
    if (err instanceof GatewayError && err.expose) ({ code, message } = err);
    else this.log.error({ err }, 'websocket frame failed');
    this.sendJson({ type: 'error', code, message, ref });
  }

  /** Control frames (acks, errors, confirmations); JSON.stringify drops undefined fields. */
  private sendJson(frame: Record<string, unknown>): void {
    if (this.released) return;
    if (this.ws.bufferedAmount > this.hub.config.ws.maxBufferedBytes) return this.overflow();
    this.ws.send(JSON.stringify(frame));
  }
}
