/**
 * Deadlines that all have the same length (a request body's read, limits.bodyTimeoutMs), in one
 * queue with one timer. Each body read had its own setTimeout, cleared a few microseconds later
 * when the body arrived with its headers: a Timeout object per request, and, since no other
 * timer had that length, Node made a timer list for it, sorted it into its priority queue and
 * dropped both again, for every /send (docs/PERFORMANCE.md, "Body deadlines, one timer").
 *
 * Deadlines of one length expire in the order they were set, so the queue is a list, oldest
 * first: setting one appends, cancelling one unlinks it, and the one timer is armed for the
 * oldest. A cancelled head leaves the timer armed; when it fires it finds nothing due and
 * re-arms for the new head, or stops when the queue is empty.
 */

/** A deadline that was set; cancel() once the work it guards is done. */
export interface Deadline {
  cancel(): void;
}

class QueuedDeadline implements Deadline {
  prev: QueuedDeadline | undefined = undefined;
  next: QueuedDeadline | undefined = undefined;
  queued = true;

  constructor(
    private readonly queue: SameLengthDeadlines,
    readonly dueAt: number,
    readonly onExpire: () => void,
  ) {}

  cancel(): void {
    if (this.queued) this.queue.unlink(this);
  }
}

export class SameLengthDeadlines {
  private head: QueuedDeadline | undefined;
  private tail: QueuedDeadline | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** When the armed timer fires (ms, Date.now()); 0 when none is armed. */
  private armedFor = 0;

  constructor(
    readonly lengthMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** `onExpire` runs once, lengthMs from now, unless cancel() came first. */
  set(onExpire: () => void): Deadline {
    const d = new QueuedDeadline(this, this.now() + this.lengthMs, onExpire);
    const tail = this.tail;
    if (tail) {
      tail.next = d;
      d.prev = tail;
    } else {
      this.head = d;
    }
    this.tail = d;
    if (this.armedFor === 0) this.arm(d.dueAt);
    return d;
  }

  /** @internal QueuedDeadline.cancel */
  unlink(d: QueuedDeadline): void {
    d.queued = false;
    if (d.prev) d.prev.next = d.next;
    else this.head = d.next;
    if (d.next) d.next.prev = d.prev;
    else this.tail = d.prev;
    d.prev = d.next = undefined;
  }

  /** Deadlines set and neither expired nor cancelled. */
  get pending(): number {
    let n = 0;
    for (let d = this.head; d; d = d.next) n++;
    return n;
  }

  private arm(at: number): void {
    this.armedFor = at;
    // Unref'd: a pending body read must not keep a process alive that is otherwise done.
    this.timer = setTimeout(() => this.fire(), Math.max(1, at - this.now()));
    this.timer.unref();
  }

  private fire(): void {
    this.armedFor = 0;
    this.timer = undefined;
    const now = this.now();
    for (let d = this.head; d && d.dueAt <= now; d = this.head) {
      this.unlink(d);
      d.onExpire();
    }
    if (this.head) this.arm(this.head.dueAt);
  }
}
