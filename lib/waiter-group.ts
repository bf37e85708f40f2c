/**
 * The waiters of one stream in the registry (lib/waiters.ts). Most streams have one: a client
 * parked on a stream of its own. A Set for one costs 234 bytes (its table is sized for four), new
 * for every poll that parks, and held for the poll's whole hold (`heap.js --held`,
 * docs/PERFORMANCE.md "What a parked poll holds"). One waiter is kept in a field; a Set is made at
 * the second, and kept once made (a stream with a crowd keeps churning).
 */
export class WaiterGroup<W> implements Iterable<W> {
  private one?: W;
  private many?: Set<W>;

  get size(): number {
    if (this.many) return this.many.size;
    return this.one === undefined ? 0 : 1;
  }

  has(waiter: W): boolean {
    return this.many ? this.many.has(waiter) : this.one === waiter;
  }

  add(waiter: W): void {
    if (this.many) this.many.add(waiter);
    else if (this.one === undefined || this.one === waiter) this.one = waiter;
    else {
      this.many = new Set([this.one, waiter]);
      this.one = undefined;
    }
  }

  /** False when the waiter was not in the group. */
  delete(waiter: W): boolean {
    if (this.many) return this.many.delete(waiter);
    if (this.one !== waiter) return false;
    this.one = undefined;
    return true;
  }

  /** In the order they were added, like a Set's. */
  [Symbol.iterator](): Iterator<W> {
    if (this.many) return this.many.values();
    return (this.one === undefined ? [] : [this.one]).values();
  }
}
