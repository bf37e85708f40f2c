/**
 * The JSON shape of a delivered batch, shared by /poll, SSE and WebSocket. Stored messages are
 * already JSON, so a response is built by joining strings, never by re-serializing messages.
 */
import type { Batch } from './delivery.js';

/** `{"messages":[...],"cursor":"...","gaps"?:[...],"resets"?:[...]}`, with `head` fields first. */
export function batchJson(batch: Batch, cursor: string, head = ''): string {
  const parts: string[] = [];
  for (const d of batch.deliveries) for (const m of d.messages) parts.push(m);
  let json = `{${head}"messages":[${parts.join(',')}],"cursor":${JSON.stringify(cursor)}`;
  const gaps = batch.deliveries.filter((d) => d.gap).map((d) => d.gap);
  if (gaps.length) json += `,"gaps":${JSON.stringify(gaps)}`;
  const resets = batch.deliveries.filter((d) => d.reset).map((d) => d.stream);
  if (resets.length) json += `,"resets":${JSON.stringify(resets)}`;
  return json + '}';
}
