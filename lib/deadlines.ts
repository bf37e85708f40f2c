/**
 * Deadlines that all have the same length, in one queue with one timer: the Redis store's
 * commands in flight (redis.commandTimeoutMs), request bodies being read (limits.bodyTimeoutMs),
 * and, one queue per length (DeadlinesByLength), parked polls' holds. A timer each cost a
 * Timeout per command or request; for a body read, cleared microseconds later when the body came
 * with its headers, Node also made a timer list for that length, sorted it into its priority
 * queue and dropped both again, every /send (docs/PERFORMANCE.md, "Body deadlines, one timer").
 *
 * Deadlines of one length expire in the order they started, so the queue is a linked list,
 * oldest first, and the one timer waits only for the oldest. done() unlinks; the timer stays
 * armed past an entry that is done and, when it fires, expires what is due and re-arms for the
 * new oldest, or stops when the queue is empty. A list, not a Set: a Set of short-lived entries
 * replaces its hash table as they come and go, and the old table keeps young entries alive
 * through scavenges (docs/PERFORMANCE.md, "No table of every parked poll").
 */

/** A started deadline; pass it to done() once its work finished. */
export interface Deadline {
  readonly expiresAt: number;
}

class QueuedDeadline implements Deadline {
  prev: QueuedDeadline | undefined = undefined;
  next: QueuedDeadline | undefined = undefined;
  queued = true;

  constructor(
    readonly queue: SameLengthDeadlines,
    readonly expiresAt: number,
    readonly onExpiry: (subject: unknown) => void,
    readonly subject: unknown,
  ) {}
}

export class SameLengthDeadlines {
  private oldest: QueuedDeadline | undefined;
  private newest: QueuedDeadline | undefined;
  private count = 0;
  private timer: NodeJS.Timeout | undefined;

  /** `onIdle` runs when the timer found the queue empty and stopped (DeadlinesByLength drops the queue then). */
  constructor(
    readonly lengthMs: number,
    private readonly now: () => number = () => performance.now(),
    private readonly onIdle?: () => void,
  ) {}

  /**
   * Starts a deadline lengthMs from now; `onExpiry(subject)` runs once if done() is not called
   * first. A shared function and its subject need no closure per deadline.
   */
  start<T>(onExpiry: (subject: T) => void, subject?: T): Deadline {
    const d = new QueuedDeadline(this, this.now() + this.lengthMs, onExpiry as (subject: unknown) => void, subject);
    const newest = this.newest;
    if (newest) {
      newest.next = d;
      d.prev = newest;
    } else {
      this.oldest = d;
    }
    this.newest = d;
    this.count++;
    if (!this.timer) this.arm(this.lengthMs);
    return d;
  }

  /** The work finished: false when its deadline had already passed (and `onExpiry` ran). */
  done(deadline: Deadline): boolean {
    const d = deadline as QueuedDeadline;
    if (!d.queued) return false;
    this.unlink(d);
    return true;
  }

  /** Stops the timer: a deadline still pending never expires. For a shutdown, once nothing waits. */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /**
   * Stops the timer when no deadline is pending: it would otherwise run on, past deadlines that
   * are done, for up to one length. A pending one keeps it; a later start() arms it again.
   */
  stopIfIdle(): void {
    if (this.count === 0) this.stop();
  }

  /** Deadlines started and neither done nor expired. */
  get size(): number {
    return this.count;
  }

  private unlink(d: QueuedDeadline): void {
    d.queued = false;
    if (d.prev) d.prev.next = d.next;
    else this.oldest = d.next;
    if (d.next) d.next.prev = d.prev;
    else this.newest = d.prev;
    d.prev = d.next = undefined;
    this.count--;
  }

  private expire(): void {
    this.timer = undefined;
    const now = this.now();
    try {
      for (let d = this.oldest; d && d.expiresAt <= now; d = this.oldest) {
        this.unlink(d);
        d.onExpiry(d.subject);
      }
    } finally {
      // Also when an onExpiry threw, and unless one started a deadline (which armed the timer).
      const oldest = this.oldest;
      if (oldest && !this.timer) this.arm(Math.max(1, Math.ceil(oldest.expiresAt - this.now())));
      else if (!oldest && !this.timer) this.onIdle?.();
    }
  }

  private arm(ms: number): void {
    // Unref'd: what waits (a socket, a request) keeps the process alive, not its deadline.
    this.timer = setTimeout(() => this.expire(), ms).unref();
  }
}

/**
 * Deadlines of any length, in one SameLengthDeadlines queue for each length in use: parked polls'
 * holds. A client chooses its poll's `timeout`, but most polls share one (the default), and a
 * setTimeout each cost every parked poll a Timeout (120 bytes, held for the whole hold and
 * promoted with it) and Node's timer list work on every poll (docs/PERFORMANCE.md, "Holds, one
 * timer per length").
 *
 * A queue is kept while its timer runs, also once it is empty: a lone poller empties it with
 * every answer and starts it again with its next poll, and dropping it then would cost each poll
 * a new queue and timer, with the old timer left running to its end. The timer finds the queue
 * empty at most one length after its last deadline ended, stops, and the queue is dropped: a
 * length no deadline uses any more is kept no longer than that.
 */
export class DeadlinesByLength {
  private readonly queues = new Map<number, SameLengthDeadlines>();

  constructor(private readonly now?: () => number) {}

  /** Starts a deadline `lengthMs` from now; `onExpiry(subject)` runs once unless done() comes first. */
  start<T>(lengthMs: number, onExpiry: (subject: T) => void, subject: T): Deadline {
    let queue = this.queues.get(lengthMs);
    if (!queue) {
      const made: SameLengthDeadlines = new SameLengthDeadlines(lengthMs, this.now, () => {
        if (this.queues.get(lengthMs) === made) this.queues.delete(lengthMs);
      });
      this.queues.set(lengthMs, (queue = made));
    }
    return queue.start(onExpiry, subject);
  }

  /** The work finished: false when its deadline had already passed (and its expiry ran). */
  done(deadline: Deadline): boolean {
    return (deadline as QueuedDeadline).queue.done(deadline);
  }

  /** Stops every length's timer and forgets the lengths (LongPolls.shutdown, once every poll ended). */
  stop(): void {
    for (const queue of this.queues.values()) queue.stop();
    this.queues.clear();
  }

  /** Lengths whose queue is kept: with a deadline pending, or its timer not yet run out. */
  get lengths(): number {
    return this.queues.size;
  }
}
