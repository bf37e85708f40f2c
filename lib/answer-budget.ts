/**
 * How one answer's budget is shared: a poll answer, a WebSocket messages frame or a batch of SSE
 * events carries at most `limit` messages and `bytes` bytes of them (limits.answerBytes), over all
 * its streams, fairly. Pure arithmetic: lib/delivery.ts reads and trims with it.
 */
import { messageBytes } from './store/store.js';

/**
 * What one answer (a poll answer, a WebSocket messages frame, a batch of SSE events) may carry,
 * shared by all its streams: `limit` messages and `bytes` bytes of them (messageBytes). A single
 * message larger than `bytes` goes alone, so a stream never sticks behind it.
 */
export interface Budget {
  limit: number;
  bytes: number;
}

/** limits.answerBytes when not configured: 1 MiB. */
export const DEFAULT_ANSWER_BYTES = 1024 * 1024;

/**
 * How many of each list's messages one answer keeps within `budget`: one message from each list
 * in turn, so one busy stream cannot starve the others; a list stops at its first message that
 * would take the answer past `budget.bytes`, and all stop at `budget.limit` messages. When not
 * one message fits, the first list's first message goes alone.
 */
export function fitBudget(lists: readonly (readonly string[])[], budget: Budget): number[] {
  const limit = Math.max(Math.floor(budget.limit), 0);
  const counts = lists.map(() => 0);
  const open = lists.map((list) => list.length > 0);
  let count = 0;
  let bytes = 0;
  for (let taking = true; taking && count < limit; ) {
    taking = false;
    for (let i = 0; i < lists.length && count < limit; i++) {
      if (!open[i]) continue;
      const list = lists[i]!;
      const size = messageBytes(list[counts[i]!]!);
      if (bytes + size > budget.bytes) {
        open[i] = false;
        continue;
      }
      bytes += size;
      count++;
      taking = true;
      if (++counts[i]! === list.length) open[i] = false;
    }
  }
  if (count === 0 && limit > 0) {
    const alone = lists.findIndex((list) => list.length > 0);
    if (alone >= 0) counts[alone] = 1;
  }
  return counts;
}

/**
 * Splits what is left of a budget between the streams of one round. Bytes are split strictly
 * (they are what a read costs): as many streams as can get what their next message is known to
 * need (`next`, 0 when unknown) are read, the biggest needs served first and the rest shared
 * evenly; a stream whose need does not fit is not read this round. Messages are split evenly, at
 * least one each (makeBatch trims the count exactly).
 */
export function splitBudget<T extends { next: number }>(open: readonly T[], left: Budget): [T, Budget][] {
  const byNeed = [...open].sort((a, b) => a.next - b.next);
  let needed = 0;
  let served = 0;
  while (served < byNeed.length && needed + byNeed[served]!.next <= left.bytes) needed += byNeed[served++]!.next;
  const bytes = new Map<T, number>();
  let bytesLeft = left.bytes;
  // Biggest needs first: each takes its need or an even share, and what is left still covers the smaller needs.
  for (let i = served - 1; i >= 0; i--) {
    const give = Math.max(Math.floor(bytesLeft / (i + 1)), byNeed[i]!.next);
    if (give <= 0) continue;
    bytes.set(byNeed[i]!, give);
    bytesLeft -= give;
  }
  const chosen = open.filter((p) => bytes.has(p));
  if (chosen.length === 0) return [];
  const limit = Math.max(1, Math.ceil(left.limit / chosen.length));
  return chosen.map((p) => [p, { limit, bytes: bytes.get(p)! }]);
}
