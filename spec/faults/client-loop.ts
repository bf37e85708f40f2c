/**
 * The lifecycle shared by the fault suite's clients (pollers and senders): start() runs the
 * client's loop, drop() cuts the request in flight (the client carries on), stop() ends the loop.
 */
export abstract class ClientLoop {
  protected stopped = false;
  /** Aborts the request in flight. */
  protected current?: AbortController;
  private loop?: Promise<void>;

  start(): void {
    this.loop = this.run();
  }

  /** Cuts the request in flight; what the client does next is its own (reconnect, retry). */
  drop(): void {
    this.current?.abort();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.current?.abort();
    await this.loop;
  }

  protected abstract run(): Promise<void>;
}
