/**
 * The JSON shape of a delivered batch, shared by /poll, SSE and WebSocket. Stored messages are
 * already JSON, so a response is built by joining strings, never by re-serializing messages.
 */
import type { Batch, Gap } from './delivery.js';

/** `{"messages":[...],"cursor":"...","gaps"?:[...],"resets"?:[...]}`, with `head` fields first. */
export function batchJson(batch: Batch, cursor: string, head = ''): string {
  let messages = '';
  let gaps: Gap[] | undefined;
  let resets: string[] | undefined;
  for (const d of batch.deliveries) {
    for (const m of d.messages) messages = messages === '' ? m : `${messages},${m}`;
    if (d.gap) (gaps ??= []).push(d.gap);
    if (d.reset) (resets ??= []).push(d.stream);
  }
  // Cursors are base64url: no escaping needed.
  let json = `{${head}"messages":[${messages}],"cursor":"${cursor}"`;
  if (gaps) json += `,"gaps":${JSON.stringify(gaps)}`;
  if (resets) json += `,"resets":${JSON.stringify(resets)}`;
  return json + '}';
}
