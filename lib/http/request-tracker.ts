/** Requests inside the gateway's pipeline: how many now (close() waits for none) and since start (/stats). */
export class RequestTracker {
  /** Requests whose middleware has not finished (a parked poll's finishes when it parks). */
  inFlight = 0;
  /** Requests the pipeline took since start. */
  total = 0;
  private idle?: () => void;

  enter(): void {
    this.inFlight++;
    this.total++;
  }

  leave(): void {
    if (--this.inFlight === 0 && this.idle) {
      this.idle();
      this.idle = undefined;
    }
  }

  /** Resolves once no request is in flight, or after `maxWaitMs`, whichever comes first. */
  async whenIdle(maxWaitMs: number): Promise<void> {
    if (this.inFlight === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      this.idle = resolve;
      timer = setTimeout(resolve, maxWaitMs);
    });
    clearTimeout(timer);
    this.idle = undefined;
  }
}
