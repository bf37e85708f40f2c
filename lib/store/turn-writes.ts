/**
 * The command connection's writes of one turn of the event loop, sent as one. Each /send's append
 * (and each read a poll sends) was a write syscall of its own: ioredis writes a command the
 * moment it is sent, and on loopback each write completes at once, so nothing queued behind it.
 * The side-by-side profile put 18-22 µs of kernel write per delivery and per publish on those
 * writes alone (docs/PERFORMANCE.md, "Redis writes, one per turn"). Corking the socket at the
 * first command of a turn and uncorking it once the turn's I/O callbacks have run (setImmediate:
 * the check phase, right after them) sends every command of the turn in one writev; Redis reads
 * them in one read too. Centrifugo batches its Redis commands the same way, for up to 100 µs;
 * ioredis's auto-pipelining flushes at process.nextTick, inside the callback that sent the
 * command, so with one command per request it held one command each (and was turned off).
 *
 * A command waits at most for the rest of the turn's callbacks, which ran before the reply
 * could be read in any case.
 */
import type { Writable } from 'node:stream';

export class TurnWrites {
  private corked: Writable | undefined;
  private readonly release = () => {
    const socket = this.corked;
    this.corked = undefined;
    socket?.uncork();
  };

  /** `socket` gives the connection's current socket (a reconnect replaces it), if any. */
  constructor(private readonly socket: () => Writable | undefined) {}

  /** Call before sending a command: it leaves with the rest of this turn's, at the turn's end. */
  hold(): void {
    if (this.corked) return;
    const socket = this.socket();
    if (!socket?.writable) return;
    socket.cork();
    this.corked = socket;
    setImmediate(this.release);
  }
}
