/**
 * HTTP long-polling: answer at once when a stream has news, otherwise park the request as a
 * waiter until messages arrive, the hold times out, a newer poll of the same connection
 * supersedes it, the process shuts down, or the client goes away. Each parked poll owns exactly
 * one cleanup (finish) that removes every timer, listener, registration and cap slot it added.
 */
import type { Position } from '../cursor.js';
import { hasNews, makeBatch, readBatch, readStreams, resolve, type Batch, type Budget } from '../delivery.js';
import type { Logger } from '../log.js';
import type { Store, StreamRead } from '../store/store.js';
import type { Waiter, WaiterLink, WaiterRegistry } from '../waiters.js';
import type { CapHolder, CapSlot, ConnectionCaps } from '../limits/connection-caps.js';
import type { GatewayError } from '../errors.js';
import type { ConnectionHub } from './hub.js';
import type { Kickable, PollSessions, PollTurn } from './poll-sessions.js';
import { DeadlinesByLength, type Deadline } from '../deadlines.js';

export type PollEnd = 'messages' | 'timeout' | 'superseded' | 'shutdown' | 'gone' | 'disconnected';

export interface PollOutcome {
  batch: Batch;
  end: PollEnd;
  /** `disconnected` only: the error the poll is answered with (403 forbidden). */
  error?: GatewayError;
}

/**
 * A poll that parked. `whenDone` calls back once, with the outcome (at once if it is already
 * known): nothing async stays suspended while the poll waits, which a parked poll would otherwise
 * hold for its whole hold (docs/PERFORMANCE.md). `outcome` is the same as a promise. Ask before
 * the outcome is told: every caller that asked by then is told, and one that asks later is
 * refused (the outcome is not kept: ParkedPoll.finish).
 */
export interface Parked {
  whenDone(callback: (outcome: PollOutcome) => void): void;
  readonly outcome: Promise<PollOutcome>;
}

export interface PollRequest {
  positions: Map<string, Position>;
  limit: number;
  timeoutMs: number;
  /** The answer's response: its 'close' before it finished says the client went away. */
  response?: ClosingResponse;
  /**
   * Just before the poll parks it takes a connection slot for this holder (lib/limits/
   * connection-caps.ts); a refusal answers the poll with that error instead of parking it.
   */
  admit?: { caps: ConnectionCaps; holder: CapHolder };
  /**
   * Whose long-poll session (lib/transports/poll-sessions.ts) this poll belongs to: presence,
   * disconnect, hooks. With a `conn`, one parked poll per (subject, conn): a newer poll answers the
   * older one at once (superseded).
   */
  session?: { subject: string; conn?: string; issuedAt?: number };
}

/** What a parked poll watches of its response (node:http's ServerResponse has it). */
export interface ClosingResponse {
  readonly writableFinished: boolean;
  /** Already closed (its 'close' may have fired before the poll parked). */
  readonly destroyed: boolean;
  on(event: 'close', listener: () => void): unknown;
  off(event: 'close', listener: () => void): unknown;
}

// The hold's expiry is one shared function given the poll as its subject: no closure per parked poll.
function timedOut(poll: ParkedPoll): void {
  poll.finish('timeout');
}

function emptyBatch(positions: Map<string, Position>): Batch {
  return { deliveries: [], positions, count: 0 };
}

/**
 * Every stream's head, as the store knows it without I/O (the memory store always, the Redis
 * store's tail cache while its wake-ups flow), is the poll's position: a read would bring
 * nothing, no gap and no reset. A poller that is caught up, the usual long-poll, parks without a
 * read when it arrives and again once subscribed.
 */
export function atKnownHeads(store: Store, positions: ReadonlyMap<string, Position>): boolean {
  if (!store.knownHead) return false;
  for (const [stream, pos] of positions) {
    const head = store.knownHead(stream);
    // Seq 0 matches any epoch (no log yet); a real position must be in the head's epoch.
    if (!head || head.lastSeq !== pos.seq || (pos.seq > 0 && head.epoch !== pos.epoch)) return false;
  }
  return true;
}

/**
 * The answer a one-stream poll gets from a shared snapshot, built once per snapshot, position and
 * limit: a broadcast hands one read to thousands of polls parked at the same position, one after
 * the other, and each would otherwise resolve it and build the same batch (and, in the route,
 * render the same JSON and cursor: routes/poll.ts renders the last batch once). One entry, the
 * last answer built: that is what a broadcast repeats, and a miss costs three comparisons.
 * Batches are never mutated once built. Only polls of one stream share: a batch's positions are
 * the whole poll's.
 */
export class SharedAnswer {
  private read?: StreamRead;
  private epoch = '';
  private seq = -1;
  private limit = 0;
  private batch?: Batch;

  get(read: StreamRead, pos: Position, limit: number): Batch | undefined {
    return read === this.read && pos.seq === this.seq && pos.epoch === this.epoch && limit === this.limit ? this.batch : undefined;
  }

  set(read: StreamRead, pos: Position, limit: number, batch: Batch): void {
    this.read = read;
    this.epoch = pos.epoch;
    this.seq = pos.seq;
    this.limit = limit;
    this.batch = batch;
  }
}

class ParkedPoll implements Waiter, Parked, Kickable {
  readonly streams: readonly string[];
  readonly limit: number;
  // What it needs of its PollRequest, not the request: its session and admission were used when
  // it parked, and holding them for the whole hold cost 135 bytes a parked poll (`heap.js --held`).
  private readonly positions: Map<string, Position>;
  private readonly response?: ClosingResponse;
  private done = false;
  /** Its hold, in the hub's queue for holds of its length (DeadlinesByLength). */
  private hold?: Deadline;
  /** A request's own 'close' fires once its body is read (Node 20): only the response's says the client left. */
  private readonly responseClosed = () => {
    if (!this.response?.writableFinished) this.finish('gone');
  };
  private readonly slot?: CapSlot;
  registryLink?: WaiterLink;
  /** Who is told the outcome; until someone asks, the outcome waits in `result`. */
  private callback?: (outcome: PollOutcome) => void;
  private result?: PollOutcome;

  constructor(readonly hub: LongPolls, req: PollRequest, private readonly turn: PollTurn | undefined, slot?: CapSlot) {
    this.positions = req.positions;
    this.limit = req.limit;
    this.response = req.response;
    this.slot = slot;
    this.streams = [...req.positions.keys()];
  }

  whenDone(callback: (outcome: PollOutcome) => void): void {
    if (this.result) return callback(this.result);
    // Ended with no outcome waiting: it was told to those who asked, and not kept (tellWithoutKeeping).
    if (this.done) throw new Error('this poll has ended and its outcome was told: ask before it ends');
    const earlier = this.callback;
    this.callback = earlier ? (outcome) => (earlier(outcome), callback(outcome)) : callback;
  }

  get outcome(): Promise<PollOutcome> {
    return new Promise((resolve) => this.whenDone(resolve));
  }

  /** The poll's `limit` and the gateway's answer bytes (limits.answerBytes). */
  private get budget(): Budget {
    return { limit: this.limit, bytes: this.hub.registry.answerBytes };
  }

  position(stream: string): Position {
    return this.positions.get(stream)!;
  }

  /** Parks it for at most `timeoutMs`. */
  start(timeoutMs: number): void {
    // The client left while the poll was being checked: its 'close' will not come again.
    if (this.response?.destroyed) return this.finish('gone');
    this.hold = this.hub.holds.start(timeoutMs, timedOut, this);
    this.response?.on('close', this.responseClosed);
    this.turn?.parked(this);
    const subscribing = this.hub.registry.add(this);
    if (!subscribing) this.subscribed();
    else {
      subscribing.then(
        () => this.subscribed(),
        (err: Error) => this.hub.log.warn({ err: err.message }, 'subscribe failed; the poll stays parked until its timeout'),
      );
    }
  }

  /**
   * Re-reads once subscribed: a message appended between the first read and the subscription
   * woke nobody. Not needed when the store knows, without I/O, that no stream moved.
   */
  private subscribed(): void {
    if (!this.done && !atKnownHeads(this.hub.store, this.positions)) void this.check(() => readBatch(this.hub.store, this.positions, this.budget));
  }

  onRead(read: StreamRead): void {
    const pos = this.positions.get(read.stream);
    if (this.done || !pos) return;
    const alone = this.streams.length === 1;
    const shared = alone ? this.hub.sharedAnswer.get(read, pos, this.limit) : undefined;
    if (shared) return this.finish('messages', shared);
    const r = resolve(pos, read, this.limit);
    const budget = this.budget;
    if (!('reread' in r)) {
      const batch = makeBatch(this.positions, [r], budget);
      if (hasNews(batch)) {
        if (alone) this.hub.sharedAnswer.set(read, pos, this.limit, batch);
        return this.finish('messages', batch);
      }
      // Only a message larger than the answer's bytes is waiting: the read that sends it alone.
      if (!r.more) return;
    }
    const only = new Map([[read.stream, pos]]);
    void this.check(async () => makeBatch(this.positions, await readStreams(this.hub.store, only, budget), budget));
  }

  /** POST /disconnect ended the poll's session: answered with `err` (403). */
  kicked(err: GatewayError): void {
    this.finish('disconnected', undefined, err);
  }

  superseded(): void {
    this.finish('superseded');
  }

  onResync(): void {
    if (!this.done) void this.check(() => readBatch(this.hub.store, this.positions, this.budget));
  }

  finish(end: PollEnd, batch?: Batch, error?: GatewayError): void {
    if (this.done) return;
    this.done = true;
    if (this.hold) this.hub.holds.done(this.hold);
    this.response?.off('close', this.responseClosed);
    this.slot?.release();
    this.turn?.end();
    this.hub.release(this);
    this.tellWithoutKeeping({ batch: batch ?? emptyBatch(this.positions), end, error });
  }

  /**
   * Tells the callers who asked, and does not keep the outcome; with nobody asking yet, it waits
   * in `result` for the first. A poll that ends has usually lived across scavenges, so it is old: an
   * outcome it kept, with its batch and the next positions, would survive every scavenge until
   * the next full collection, copied twice and then promoted, for every answered poll
   * (docs/PERFORMANCE.md, "An outcome told, not kept").
   */
  private tellWithoutKeeping(outcome: PollOutcome): void {
    const callback = this.callback;
    if (!callback) {
      this.result = outcome;
      return;
    }
    this.callback = undefined;
    callback(outcome);
  }

  private async check(read: () => Promise<Batch>): Promise<void> {
    try {
      const batch = await read();
      if (hasNews(batch)) this.finish('messages', batch);
    } catch (err) {
      // The store is away: stay parked; the timeout answers with the cursor unchanged.
      this.hub.log.debug({ err: (err as Error).message }, 'parked poll read failed');
    }
  }
}

export class LongPolls implements ConnectionHub {
  /** Parked polls, counted; they are found through the registry (WaiterLink says why not a Set). */
  private parked = 0;
  /**
   * Every parked poll's hold, one timer for each hold length in use. The timers are unref'd: a
   * parked poll's socket keeps the process alive, not its hold.
   */
  readonly holds = new DeadlinesByLength();
  private draining = false;
  readonly sharedAnswer = new SharedAnswer();

  constructor(readonly store: Store, readonly registry: WaiterRegistry, readonly log: Logger, readonly sessions?: PollSessions) {}

  /** Parked polls in this process. */
  get size(): number {
    return this.parked;
  }

  /**
   * Answers now if any stream has news (or timeout is 0), otherwise parks and returns the parked
   * poll (its outcome comes through `whenDone` or `outcome`). An answer holds at most `limit`
   * messages and the registry's answerBytes of them. A caught-up poller (atKnownHeads) needs no
   * read and gets its answer or parked poll at once, not through a promise; otherwise the first
   * read comes first and its store errors reject. The cap error of `admit`, when the poll may not
   * park, is thrown at once or rejects after that read.
   */
  poll(req: PollRequest): PollOutcome | Parked | Promise<PollOutcome | Parked> {
    const turn = req.session && this.sessions?.begin(req.session.subject, req.session.conn, [...req.positions.keys()], req.session.issuedAt);
    if (req.session?.conn !== undefined) turn?.supersedeOthers();
    if (atKnownHeads(this.store, req.positions)) return this.afterRead(req, turn, emptyBatch(req.positions));
    return readBatch(this.store, req.positions, { limit: req.limit, bytes: this.registry.answerBytes }).then(
      (batch) => this.afterRead(req, turn, batch),
      (err: unknown) => {
        turn?.end();
        throw err;
      },
    );
  }

  /** poll() once the positions' news is known: the answer, or the poll parked. */
  private afterRead(req: PollRequest, turn: PollTurn | undefined, batch: Batch): PollOutcome | Parked {
    let poll: ParkedPoll | undefined;
    try {
      if (hasNews(batch)) return { batch, end: 'messages' };
      if (req.timeoutMs <= 0) return { batch, end: 'timeout' };
      if (this.draining) return { batch, end: 'shutdown' };
      // Its session was kicked (POST /disconnect) while it read: answered as the kick would have.
      const kicked = turn?.kickedWith;
      if (kicked) return { batch, end: 'disconnected', error: kicked };
      poll = new ParkedPoll(this, req, turn, req.admit?.caps.acquire(req.admit.holder));
    } finally {
      // Answered at once (or refused): the session waits for the next poll. Parked: its finish ends the turn.
      if (!poll) turn?.end();
    }
    // Another poll of the same connection may have parked while we read.
    if (req.session?.conn !== undefined) turn?.supersedeOthers();
    this.parked++;
    poll.start(req.timeoutMs);
    return poll;
  }

  /** Called by a parked poll's finish(); drops every reference to it. */
  release(poll: ParkedPoll): void {
    this.parked--;
    this.registry.remove(poll);
  }

  /** Answers every parked poll now with its cursor unchanged; later polls are answered at once. */
  async shutdown(): Promise<void> {
    this.draining = true;
    // A parked poll is in the registry from its start() to its finish().
    this.registry.forEach((w) => {
      if (w instanceof ParkedPoll && w.hub === this) w.finish('shutdown');
    });
    // Every hold ended with its poll: no timer of theirs is left running.
    this.holds.stop();
    this.sessions?.closeAll();
  }
}
