/**
 * One WebSocket client: authenticates (upgrade credentials or the first frame, and fresh tokens
 * in-band later), handles JSON frames one at a time, and streams its subscriptions through a Feed.
 * Subscribing and sending go through the same rules as /poll and /send (lib/subscriptions.ts,
 * lib/messages.ts); errors become frames and close codes through toWire(). The socket is closed
 * with 4401 when its token expires, and does nothing for it from that moment. Owns exactly one
 * cleanup (release) that drops the feed's waiters, the auth and expiry timers, the heartbeat
 * membership and the hub's reference; it runs on the first of: close frame, socket close,
 * heartbeat death, overflow, shutdown, expiry.
 * The frames and close codes are documented in docs/PROTOCOL.md.
 */
import type { RawData, WebSocket } from 'ws';
import type { Auth, Principal } from '../auth.js';
import type { Config } from '../config.js';
import type { CursorCodec } from '../cursor.js';
import type { Batch } from '../delivery.js';
import { BadRequestError, CLOSE, LimitExceededError, toWire, UnauthorizedError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Messages } from '../messages.js';
import type { Metrics } from '../metrics.js';
import type { Session, SessionEnd, Sessions } from '../sessions.js';
import { parseStreamList } from '../streams.js';
import type { Store } from '../store/store.js';
import { parseSubscription, type Subscriptions } from '../subscriptions.js';
import type { WaiterRegistry } from '../waiters.js';
import { batchJson } from '../wire.js';
import { Feed, type FeedSink } from './feed.js';
import type { Heartbeat, HeartbeatMember } from './heartbeat.js';

/** What a connection needs: its options and the services it calls, not the hub. */
export interface WsConnectionDeps {
  options: Config['ws'];
  auth: Auth;
  cursors: CursorCodec;
  subscriptions: Subscriptions;
  messages: Messages;
  feed: { store: Store; registry: WaiterRegistry };
  heartbeat: Heartbeat;
  log: Logger;
  /** Who is connected (presence, POST /disconnect, hooks); the socket is a session once authenticated. */
  sessions?: Sessions;
  metrics?: Metrics;
  /** Called once by the connection's cleanup. */
  released(conn: WsConnection): void;
}

/**
 * The connection slot a socket holds (lib/limits/connection-caps.ts). Taken at the upgrade for
 * whoever the upgrade's credentials name (nobody, until an auth frame); re-taken when an auth frame
 * names a principal counted differently, so a client token's subject is capped like on /poll.
 */
export interface ConnectionSlot {
  /** Counts the socket for `principal` from now on. Throws RateLimitedError or OverloadedError over a cap. */
  retake(principal: Principal): void;
}

/** setTimeout's longest delay (2^31 - 1 ms); a longer one fires at once. */
const MAX_TIMER_MS = 2_147_483_647;

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
  private expiryTimer?: NodeJS.Timeout;
  private inbound: Promise<void> = Promise.resolve();
  private inFlight = 0;
  private released = false;
  private session?: Session;
  private readonly openedAt = Date.now();
  private readonly log: Logger;

  constructor(private readonly ws: WebSocket, private readonly deps: WsConnectionDeps, private readonly slot: ConnectionSlot, principal?: Principal) {
    this.principal = principal;
    this.log = deps.log;
    this.feed = new Feed(this, {
      ...deps.feed,
      log: deps.log,
      limit: deps.options.batchLimit,
      maxBufferedBytes: deps.options.maxBufferedBytes,
    });
  }

  get subject(): string | undefined {
    return this.principal?.subject;
  }

  start(): void {
    this.ws.on('message', (data, isBinary) => this.onFrame(data, isBinary));
    this.ws.on('pong', () => this.deps.heartbeat.alive(this));
    // Errors (a frame over maxPayload, a protocol violation) are followed by 'close'.
    this.ws.on('error', (err) => this.log.debug({ err: err.message }, 'websocket error'));
    this.ws.once('close', (code) => {
      this.release('closed');
      this.log.info({ sub: this.subject, code, ms: Date.now() - this.openedAt }, 'websocket closed');
    });
    this.deps.heartbeat.add(this);
    this.openSession();
    if (!this.principal) {
      this.authTimer = setTimeout(() => this.closeWith(new UnauthorizedError('no auth frame in time')), this.deps.options.authTimeoutMs);
    }
    this.watchExpiry();
  }

  ping(): void {
    this.ws.ping();
  }

  dead(): void {
    this.log.info({ sub: this.subject }, 'websocket missed pongs: dropped');
    this.release('closed');
    // The peer is not answering: a closing handshake would only wait for closeTimeout.
    this.ws.terminate();
  }

  /** Starts the closing handshake with a code and reason, releasing everything now. */
  close(code: number, reason: string, end: SessionEnd = code === CLOSE.goingAway ? 'shutdown' : 'closed'): void {
    this.release(end);
    this.ws.close(code, reasonOf(reason));
  }

  /** Closes with the error's close code and message (toWire). */
  private closeWith(err: unknown, end?: SessionEnd): void {
    const wire = toWire(err);
    if (wire.unexpected) this.log.error({ err }, 'websocket closed on an unexpected error');
    this.deps.metrics?.refused(wire);
    this.close(wire.closeCode, wire.message, end);
  }

  /** The socket as a session of its subject (lib/sessions.ts), once it has one; a kick closes it (4403). */
  private openSession(): void {
    const { sessions } = this.deps;
    if (!sessions || !this.principal || this.released) return;
    if (this.session?.subject === this.principal.subject) {
      // A fresh token for the same subject: a later revoke judges this one.
      this.session.issuedAt = this.principal.issuedAt;
      return;
    }
    this.session?.end('closed');
    this.session = sessions.open(this.principal.subject, 'ws', [...this.feed.positions.keys()], (err) => this.closeWith(err, 'disconnected'), this.principal.issuedAt);
  }

  // FeedSink

  write(batch: Batch): Promise<void> {
    this.deps.metrics?.delivered('ws', batch);
    const json = batchJson(batch, this.deps.cursors.encode(batch.positions), '"type":"messages",');
    return new Promise((resolve) => this.ws.send(json, () => resolve()));
  }

  bufferedBytes(): number {
    return this.ws.bufferedAmount;
  }

  overflow(): void {
    this.log.info({ sub: this.subject, buffered: this.ws.bufferedAmount }, 'websocket client too slow: closed');
    this.close(CLOSE.tooSlow, `too slow: more than ${this.deps.options.maxBufferedBytes} bytes unread; resume with your cursor`);
  }

  /** The one cleanup. Idempotent. */
  private release(end: SessionEnd = 'closed'): void {
    if (this.released) return;
    this.released = true;
    this.session?.end(end);
    clearTimeout(this.authTimer);
    clearTimeout(this.expiryTimer);
    this.feed.close();
    this.deps.heartbeat.delete(this);
    this.deps.released(this);
  }

  private onFrame(data: RawData, isBinary: boolean): void {
    this.deps.heartbeat.alive(this);
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
    // The expiry timer may run a little late: from the token's expiry on, no frame is acted on.
    if (this.expired()) return this.closeWith(new UnauthorizedError('token expired'));
    if (frame.type === 'auth') return this.onAuth(frame, ref);
    if (!this.principal) return this.closeWith(new UnauthorizedError('authenticate first: {"type":"auth","token":"..."}'));
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

  /**
   * The first auth frame, or a fresh token on an authenticated socket (before the old one expires):
   * subscriptions stay, the expiry moves, the slot follows the subject. A token that is invalid,
   * may not read a stream already subscribed, or puts its subject over its cap closes the socket.
   */
  private async onAuth(frame: Frame, ref: Ref): Promise<void> {
    let principal: Principal;
    try {
      if (typeof frame.token !== 'string' || frame.token === '') throw new UnauthorizedError('auth frame needs a "token" string');
      principal = await this.deps.auth.authenticate(frame.token);
      if (this.released) return;
      await this.deps.subscriptions.authorize(principal, [...this.feed.positions.keys()], 'ws');
      if (this.released) return;
      this.slot.retake(principal);
    } catch (err) {
      return this.closeWith(err);
    }
    this.principal = principal;
    this.openSession();
    clearTimeout(this.authTimer);
    this.watchExpiry();
    this.sendJson({ type: 'authenticated', subject: principal.subject, ref });
  }

  private expired(): boolean {
    return this.principal !== undefined && Date.now() >= this.principal.expiresAtMs;
  }

  /** Closes the socket (4401) when the current token expires; a fresh token moves the deadline. */
  private watchExpiry(): void {
    clearTimeout(this.expiryTimer);
    const left = (this.principal?.expiresAtMs ?? Infinity) - Date.now();
    if (left === Infinity) return;
    this.expiryTimer = setTimeout(() => {
      if (this.expired()) this.closeWith(new UnauthorizedError('token expired'), 'expired');
      else this.watchExpiry();
    }, Math.max(0, Math.min(left, MAX_TIMER_MS)));
  }

  private async onSubscribe(frame: Frame, ref: Ref): Promise<void> {
    const { maxSubscriptions } = this.deps.options;
    const sub = parseSubscription({ streams: frame.streams, cursor: frame.cursor, since: frame.since }, maxSubscriptions);
    await this.deps.subscriptions.authorize(this.principal!, sub.streams, 'ws');
    const fresh = sub.streams.filter((s) => !this.feed.positions.has(s));
    if (this.feed.size + fresh.length > maxSubscriptions) {
      throw new LimitExceededError(`a connection may subscribe to at most ${maxSubscriptions} streams (${this.feed.size} now)`);
    }
    const start = await this.deps.subscriptions.positions({ ...sub, streams: fresh });
    await this.feed.add(start);
    this.session?.setStreams([...this.feed.positions.keys()]);
    this.sendJson({ type: 'subscribed', streams: sub.streams, cursor: this.deps.cursors.encode(this.feed.positions), ref });
  }

  private async onUnsubscribe(frame: Frame, ref: Ref): Promise<void> {
    const streams = parseStreamList(frame.streams, this.deps.options.maxSubscriptions);
    this.feed.remove(streams);
    this.session?.setStreams([...this.feed.positions.keys()]);
    this.sendJson({ type: 'unsubscribed', streams, cursor: this.deps.cursors.encode(this.feed.positions), ref });
  }

  /** The same rules and rate limits as POST /send (lib/messages.ts); one stream per frame. */
  private async onSend(frame: Frame, ref: Ref): Promise<void> {
    const { messages } = this.deps;
    const publishing = messages.publish(this.principal!, [messages.parse(frame, 'send', false)], 'ws');
    const [r] = publishing instanceof Promise ? await publishing : publishing;
    this.sendJson({ type: 'ack', id: r!.id, seq: r!.seq, stream: r!.stream, duplicate: r!.duplicate || undefined, ref });
  }

  /** An error frame; the socket stays open (docs/PROTOCOL.md, "Errors"). */
  private sendError(err: unknown, ref?: Ref): void {
    const wire = toWire(err);
    if (wire.unexpected) this.log.error({ err }, 'websocket frame failed');
    this.deps.metrics?.refused(wire);
    this.sendJson({ type: 'error', code: wire.code, message: wire.message, retryAfter: wire.retryAfter, ref });
  }

  /** Control frames (acks, errors, confirmations); JSON.stringify drops undefined fields. */
  private sendJson(frame: Record<string, unknown>): void {
    if (this.released) return;
    if (this.ws.bufferedAmount > this.deps.options.maxBufferedBytes) return this.overflow();
    this.ws.send(JSON.stringify(frame));
  }
}
