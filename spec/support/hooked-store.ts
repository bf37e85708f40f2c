/**
 * A real store with a seam: counts reads and lets a test hold a read open to force an
 * interleaving (e.g. append between a poll's first read and its parking). Delegates everything.
 */
import type { AppendResult, NewMessage, Store, StoreListener, StreamRead } from '../../lib/store/store.js';

export class HookedStore implements Store {
  reads = 0;
  /** Runs before each read reaches the real store; may await to hold the read. */
  beforeRead?: (stream: string, after: number, limit: number) => Promise<void> | void;

  /** knownHead() calls: a parked poll makes one per stream once subscribed (if the store has it). */
  headChecks = 0;
  knownHead?: Store['knownHead'];

  constructor(readonly inner: Store) {
    if (inner.knownHead) {
      this.knownHead = (stream) => {
        this.headChecks++;
        return inner.knownHead!(stream);
      };
    }
  }

  get kind() {
    return this.inner.kind;
  }
  append(stream: string, messages: readonly NewMessage[]): AppendResult[] | Promise<AppendResult[]> {
    return this.inner.append(stream, messages);
  }
  async read(stream: string, after: number, limit: number, maxBytes?: number): Promise<StreamRead> {
    this.reads++;
    await this.beforeRead?.(stream, after, limit);
    return this.inner.read(stream, after, limit, maxBytes);
  }
  subscribe(stream: string): Promise<void> | undefined {
    return this.inner.subscribe(stream);
  }
  unsubscribe(stream: string): Promise<void> {
    return this.inner.unsubscribe(stream);
  }
  setListener(listener: StoreListener): void {
    this.inner.setListener(listener);
  }
  ping(): Promise<void> {
    return this.inner.ping();
  }
  stats(): Readonly<Record<string, number>> {
    return this.inner.stats?.() ?? {};
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
