/**
 * One stream's retained messages in the memory store, oldest first, with their idempotency keys. A full log
 * drops its oldest message on every append, so dropping must not move what is retained: dropped
 * slots are cleared and skipped, and the arrays are compacted only once the dropped front is as
 * long as what is retained (O(1) amortized per drop; splice moved every message every time).
 */

/** Below this many dropped slots the front is never compacted (small logs would copy on every drop). */
const COMPACT_MIN = 32;

export class RetainedMessages {
  private messages: (string | undefined)[] = [];
  private ids: (string | undefined)[] = [];
  /** Index of the oldest retained message; the slots before it are cleared. */
  private head = 0;

  get length(): number {
    return this.messages.length - this.head;
  }

  /** `key` is the message's retry key (retryKey in store.ts), undefined when it has none. */
  push(message: string, key: string | undefined): void {
    this.messages.push(message);
    this.ids.push(key);
  }

  /**
   * Drops the `count` oldest messages (fewer if fewer are retained) and deletes their keys from
   * `index` (the store's key-to-seq map: taken as is, so a trim allocates no callback).
   */
  dropOldest(count: number, index: { delete(id: string): unknown }): void {
    if (count <= 0) return;
    const end = Math.min(this.head + count, this.messages.length);
    for (let i = this.head; i < end; i++) {
      const key = this.ids[i];
      if (key !== undefined) index.delete(key);
      // Cleared, so a dropped message is garbage now and not at the next compaction.
      this.messages[i] = undefined;
      this.ids[i] = undefined;
    }
    this.head = end;
    if (this.head >= COMPACT_MIN && this.head >= this.length) {
      this.messages = this.messages.slice(this.head);
      this.ids = this.ids.slice(this.head);
      this.head = 0;
    }
  }

  /** Retained messages `start` to `end` (exclusive), counted from the oldest retained one. */
  slice(start: number, end: number): string[] {
    return this.messages.slice(this.head + start, this.head + Math.min(end, this.length)) as string[];
  }

  clear(): void {
    this.messages = [];
    this.ids = [];
    this.head = 0;
  }
}
