/**
 * Deadlines of the Redis commands in flight, kept by one timer. Every command has the same
 * timeout, so they expire in the order they started: a Set (iterated in insertion order) is the
 * queue, and the timer only ever waits for its oldest entry. A timer and a Promise.race per
 * command cost a Timeout, two promises and their closures on every append and read.
 */
export interface Deadline {
  readonly expiresAt: number;
  /** Called once, if the deadline passes before `done()`. */
  readonly onExpiry: () => void;
}

export class CommandDeadlines {
  private readonly pending = new Set<Deadline>();
  private timer?: NodeJS.Timeout;

  constructor(private readonly timeoutMs: number, private readonly now: () => number = () => performance.now()) {}

  /** Starts a deadline `timeoutMs` from now; `onExpiry` runs if `done` is not called first. */
  start(onExpiry: () => void): Deadline {
    const deadline = { expiresAt: this.now() + this.timeoutMs, onExpiry };
    this.pending.add(deadline);
    if (!this.timer) this.arm(this.timeoutMs);
    return deadline;
  }

  /** The command answered: false when its deadline had already passed (and `onExpiry` ran). */
  done(deadline: Deadline): boolean {
    // The timer stays armed for the entry it waits for; with nothing left it just finds nothing.
    return this.pending.delete(deadline);
  }

  /** Commands still waiting for their reply or their deadline. */
  get size(): number {
    return this.pending.size;
  }

  private expire(): void {
    this.timer = undefined;
    const now = this.now();
    for (const d of this.pending) {
      if (d.expiresAt > now) return this.arm(Math.max(1, Math.ceil(d.expiresAt - now)));
      this.pending.delete(d);
      d.onExpiry();
    }
  }

  private arm(ms: number): void {
    // Unref'd: a command in flight keeps the process alive through its socket, not through this.
    this.timer = setTimeout(() => this.expire(), ms).unref();
  }
}
