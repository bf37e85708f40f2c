/**
 * WebSocket liveness with two shared timers, however many sockets: a ping round every
 * `intervalMs`, and `timeoutMs` after it one check that counts a miss for every socket that has
 * not answered that round. After `maxMissed` misses in a row the member is declared dead.
 * The timers run only while there are members.
 */

export interface HeartbeatMember {
  /** Sends a ping; the member calls Heartbeat.alive() when anything comes back. */
  ping(): void;
  /** Missed too many pongs: drop the connection (the member then calls Heartbeat.delete()). */
  dead(): void;
}

export interface HeartbeatOptions {
  intervalMs: number;
  timeoutMs: number;
  maxMissed: number;
}

interface State {
  /** The round of the last ping still unanswered, or 0. */
  awaiting: number;
  missed: number;
}

export class Heartbeat {
  private readonly members = new Map<HeartbeatMember, State>();
  private interval?: NodeJS.Timeout;
  private check?: NodeJS.Timeout;
  private round = 0;

  constructor(private readonly options: HeartbeatOptions) {}

  get size(): number {
    return this.members.size;
  }

  /** Number of live timers (0 or 2 in steady state), for tests and leak checks. */
  get timers(): number {
    return (this.interval ? 1 : 0) + (this.check ? 1 : 0);
  }

  add(member: HeartbeatMember): void {
    this.members.set(member, { awaiting: 0, missed: 0 });
    this.interval ??= setInterval(() => this.pingRound(), this.options.intervalMs);
  }

  delete(member: HeartbeatMember): void {
    if (!this.members.delete(member) || this.members.size > 0) return;
    clearInterval(this.interval);
    clearTimeout(this.check);
    this.interval = this.check = undefined;
  }

  /** The peer answered (a pong, or any frame: both prove the connection carries data both ways). */
  alive(member: HeartbeatMember): void {
    const state = this.members.get(member);
    if (!state) return;
    state.awaiting = 0;
    state.missed = 0;
  }

  private pingRound(): void {
    if (this.check) {
      // The timeout equals the interval and this tick came first: the next ping is the deadline.
      clearTimeout(this.check);
      this.checkRound(this.round);
      if (this.members.size === 0) return;
    }
    const round = ++this.round;
    for (const [member, state] of this.members) {
      state.awaiting = round;
      member.ping();
    }
    this.check = setTimeout(() => this.checkRound(round), this.options.timeoutMs);
  }

  private checkRound(round: number): void {
    this.check = undefined;
    for (const [member, state] of [...this.members]) {
      if (state.awaiting !== round) continue;
      state.missed += 1;
      if (state.missed >= this.options.maxMissed) member.dead();
    }
  }
}
