/**
 * A bounded map that forgets its oldest entries, for memos (issued cursors, verified tokens).
 * Two generations: lookups check the newer, then the older; when the newer is full it becomes
 * the older and the old older is dropped whole. A FIFO Map that deletes `keys().next()` on every
 * insert cost 2.6 µs per insert at 4,096 entries (V8 skips every deleted slot from the front
 * until it rehashes); this costs an insert and, every `capacity / 2` inserts, one new Map.
 * An entry is kept for at least `capacity / 2` inserts after its last set, at most `capacity`.
 */
export class RecentMap<K, V> {
  private newer = new Map<K, V>();
  private older = new Map<K, V>();
  private readonly half: number;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 2) throw new Error('RecentMap capacity must be an integer of at least 2');
    this.half = capacity >> 1;
  }

  get size(): number {
    return this.newer.size + this.older.size;
  }

  get(key: K): V | undefined {
    return this.newer.get(key) ?? this.older.get(key);
  }

  has(key: K): boolean {
    return this.newer.has(key) || this.older.has(key);
  }

  set(key: K, value: V): void {
    if (!this.newer.has(key)) {
      if (this.newer.size >= this.half) {
        this.older = this.newer;
        this.newer = new Map();
      }
      // One copy only: an entry set again moves to the newer generation.
      this.older.delete(key);
    }
    this.newer.set(key, value);
  }

  /**
   * set() for a memo of a pure function, where a key always has the same value: one Map operation
   * where set() makes three (has, then delete from the older generation, then set). A copy it
   * leaves in the older generation holds that same value and goes with it (size counts both copies,
   * so the memo then holds fewer distinct keys than its capacity). In a memo of thousands
   * of entries every lookup is a cache miss or three; the cursor memo sets one entry per answer
   * (docs/PERFORMANCE.md, "A memo set in one lookup").
   */
  remember(key: K, value: V): void {
    if (this.newer.size >= this.half) {
      this.older = this.newer;
      this.newer = new Map();
    }
    this.newer.set(key, value);
  }

  delete(key: K): void {
    this.newer.delete(key);
    this.older.delete(key);
  }
}
