/**
 * In-process store with the same semantics as Redis: for `npm start` with nothing installed and
 * for single-process use. Not durable, not shared between processes.
 */
import { newEpoch } from '../cursor.js';
import { RetainedMessages } from './retained-messages.js';
import type { RetentionRule } from '../config.js';
import { WAKE_MESSAGES_MAX_BYTES, messageHead, retryKey, withinBytes, type AppendResult, type NewMessage, type Store, type StoreListener, type StreamRead, type WakeHint } from './store.js';

interface StreamLog {
  epoch: string;
  lastSeq: number;
  /** Stored JSON and idempotency keys of retained messages, oldest first; the i-th (from 0) has seq lastSeq - length + 1 + i. */
  retained: RetainedMessages;
  /** retryKey(message) -> seq, for the retained messages that have one. */
  seqByKey: Map<string, number>;
  logExpiresAt: number;
  metaExpiresAt: number;
}

const SWEEP_MS = 60_000;

/**
 * A stored message as one flat string. `head + seq + tail` keeps a tree of string pieces: V8
 * makes a ConsString for each `+` and each part of the tail's template, about eight of them per
 * message. Until an answer's first read flattened it in place (keeping the tree's shell), a
 * retained message held about 640 bytes instead of about 240, and the old generation had eight
 * objects to mark instead of one: logs that are kept and not yet read. join() copies the parts
 * once into one string (docs/PERFORMANCE.md, "A stored message, flat").
 */
function storedMessage(head: string, seq: number, tail: string): string {
  return [head, seq, tail].join('');
}

export class MemoryStore implements Store {
  readonly kind = 'memory' as const;
  private readonly streams = new Map<string, StreamLog>();
  private listener?: StoreListener;
  private readonly subscribed = new Set<string>();
  private readonly sweeper: NodeJS.Timeout;

  /** `now` is injectable so expiry can be tested without waiting. */
  constructor(
    private readonly retention: (stream: string) => RetentionRule,
    private readonly now: () => number = Date.now,
  ) {
    this.sweeper = setInterval(() => this.sweep(), SWEEP_MS);
    this.sweeper.unref();
  }

  append(stream: string, messages: readonly NewMessage[]): AppendResult[] {
    const rule = this.retention(stream);
    let log = this.live(stream);
    if (!log) {
      log = { epoch: newEpoch(), lastSeq: 0, retained: new RetainedMessages(), seqByKey: new Map(), logExpiresAt: 0, metaExpiresAt: 0 };
      this.streams.set(stream, log);
    }
    const head = messageHead(stream);
    const results: AppendResult[] = [];
    const added: string[] = [];
    let addedBytes = 0;
    for (const m of messages) {
      const key = retryKey(m);
      const prev = key === undefined ? undefined : log.seqByKey.get(key);
      if (prev !== undefined) {
        results.push({ stream, seq: prev, id: m.id, duplicate: true });
        continue;
      }
      const seq = ++log.lastSeq;
      const stored = storedMessage(head, seq, m.tail);
      log.retained.push(stored, key);
      added.push(stored);
      addedBytes += stored.length + 1;
      if (key !== undefined) log.seqByKey.set(key, seq);
      results.push({ stream, seq, id: m.id, duplicate: false });
    }
    const excess = log.retained.length - rule.maxLength;
    if (excess > 0) log.retained.dropOldest(excess, log.seqByKey);
    if (added.length > 0) {
      const now = this.now();
      log.logExpiresAt = now + rule.ttlSeconds * 1000;
      log.metaExpiresAt = now + rule.metaTtlSeconds * 1000;
      if (this.subscribed.has(stream)) {
        const hint: WakeHint = { epoch: log.epoch, lastSeq: log.lastSeq };
        // Same rule as append-3.lua: carry them when small and none was trimmed by this append.
        if (addedBytes <= WAKE_MESSAGES_MAX_BYTES && added.length <= rule.maxLength) hint.messages = added;
        // Wake after the sender's promise settles, as a Redis publish would.
        queueMicrotask(() => this.listener?.wake(stream, hint));
      }
    }
    return results;
  }

  async read(stream: string, after: number, limit: number, maxBytes = 0): Promise<StreamRead> {
    const log = this.live(stream);
    if (!log) return { stream, epoch: '', lastSeq: 0, firstSeq: 1, after, messages: [] };
    const firstSeq = log.lastSeq - log.retained.length + 1;
    const from = Math.max(after, firstSeq - 1);
    const start = from - firstSeq + 1;
    const read: StreamRead = { stream, epoch: log.epoch, lastSeq: log.lastSeq, firstSeq, after: from, messages: [] };
    if (limit <= 0 || from >= log.lastSeq) return read;
    const cut = withinBytes(log.retained.slice(start, start + limit), maxBytes);
    read.messages = cut.messages;
    if (cut.nextBytes !== undefined) read.nextBytes = cut.nextBytes;
    return read;
  }

  subscribe(stream: string): undefined {
    this.subscribed.add(stream);
    return undefined;
  }

  async unsubscribe(stream: string): Promise<void> {
    this.subscribed.delete(stream);
  }

  setListener(listener: StoreListener): void {
    this.listener = listener;
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.subscribed.clear();
  }

  /** Always known in process: the head a read would return now. */
  knownHead(stream: string): { epoch: string; lastSeq: number } {
    const log = this.live(stream);
    return log ? { epoch: log.epoch, lastSeq: log.lastSeq } : { epoch: '', lastSeq: 0 };
  }

  /** The stream's log after applying expiry: messages go at the log TTL, the stream at the meta TTL. */
  private live(stream: string): StreamLog | undefined {
    const log = this.streams.get(stream);
    if (!log) return undefined;
    const now = this.now();
    if (now >= log.metaExpiresAt) {
      this.streams.delete(stream);
      return undefined;
    }
    if (now >= log.logExpiresAt && log.retained.length > 0) {
      log.retained.clear();
      log.seqByKey.clear();
    }
    return log;
  }

  private sweep(): void {
    for (const stream of this.streams.keys()) this.live(stream);
  }
}
