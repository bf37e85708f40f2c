/**
 * The fault suite's transports that stay open: Server-Sent Events (parsed by hand from fetch, so
 * the poller, not EventSource, decides when and where to reconnect) and WebSocket. Each turns one
 * connection into WireBatches with the cursor to resume from, and rejects when the connection ends
 * for any reason, so the Poller reconnects to a live node with the last cursor it recorded.
 */
import { WebSocket } from 'ws';
import type { FollowRequest, Transport, WireBatch } from './pollers.js';

type WireMessage = WireBatch['messages'][number];

/** One parsed SSE event (comments and `retry:` lines dropped). */
interface SseEvent {
  event: string;
  id?: string;
  data: string;
}

/** Splits an event-stream body into events, as the HTML spec's parser does (LF, CRLF or CR lines). */
async function* sseEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  let buffer = '';
  let current: { event?: string; id?: string; data: string[] } = { data: [] };
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    const lines = buffer.split(/\r\n|\r|\n/);
    buffer = lines.pop()!;
    for (const line of lines) {
      if (line === '') {
        if (current.data.length > 0) yield { event: current.event ?? 'message', id: current.id, data: current.data.join('\n') };
        current = { data: [] };
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') current.event = value;
      else if (field === 'id') current.id = value;
      else if (field === 'data') current.data.push(value);
    }
  }
}

/** What one SSE event means to the checker; every event the gateway sends carries the cursor after it. */
function sseBatch(e: SseEvent): WireBatch | undefined {
  if (!e.id) throw new Error(`sse "${e.event}" event without an id`);
  switch (e.event) {
    case 'ready':
      return { messages: [], cursor: e.id };
    case 'message':
      return { messages: [JSON.parse(e.data) as WireMessage], cursor: e.id };
    case 'gap':
      return { messages: [], gaps: [JSON.parse(e.data) as NonNullable<WireBatch['gaps']>[number]], cursor: e.id };
    case 'reset':
      return { messages: [], resets: [(JSON.parse(e.data) as { stream: string }).stream], cursor: e.id };
    default:
      return undefined;
  }
}

/**
 * GET /sse with the API key as `token` and the cursor as Last-Event-ID (what a reconnecting
 * browser sends); `since=earliest` only before the first cursor.
 */
export const sse: Transport = {
  name: 'sse',
  async follow(req, onBatch) {
    const q = new URLSearchParams({ streams: req.streams.join(','), token: req.apiKey });
    if (!req.cursor) q.set('since', 'earliest');
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (req.cursor) headers['last-event-id'] = req.cursor;
    const res = await fetch(`${req.url}/sse?${q}`, { headers, signal: req.signal });
    if (res.status !== 200 || !res.body) throw new Error(`sse answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
    for await (const e of sseEvents(res.body)) {
      const batch = sseBatch(e);
      if (batch) onBatch(batch);
    }
    // A draining node answers with `retry:` only; a node that ends a stream expects a reconnect.
    throw new Error('sse stream ended');
  },
};

/**
 * GET /ws, authenticated by the first frame (keeps the key out of the URL), one subscribe with the
 * cursor; every `messages` frame and the `subscribed` confirmation carry the cursor to resume from.
 */
export const websocket: Transport = {
  name: 'websocket',
  follow(req: FollowRequest, onBatch: (batch: WireBatch) => void): Promise<never> {
    return new Promise<never>((_, reject) => {
      const ws = new WebSocket(`${req.url.replace(/^http/, 'ws')}/ws`);
      let failure: Error | undefined;
      const fail = (err: Error) => {
        failure ??= err;
        ws.terminate();
      };
      const onAbort = () => fail(new Error('aborted'));
      if (req.signal.aborted) onAbort();
      req.signal.addEventListener('abort', onAbort, { once: true });
      ws.on('error', (err) => fail(err));
      ws.once('close', (code, reason) => {
        req.signal.removeEventListener('abort', onAbort);
        reject(failure ?? new Error(`websocket closed ${code} ${reason.toString()}`));
      });
      ws.once('open', () => {
        ws.send(JSON.stringify({ type: 'auth', token: req.apiKey }));
        ws.send(JSON.stringify({ type: 'subscribe', streams: req.streams, ...(req.cursor ? { cursor: req.cursor } : { since: 'earliest' }) }));
      });
      ws.on('message', (data) => {
        if (failure) return;
        try {
          const frame = JSON.parse(data.toString()) as Record<string, any>;
          if (frame.type === 'messages') onBatch(frame as unknown as WireBatch);
          else if (frame.type === 'subscribed') onBatch({ messages: [], cursor: frame.cursor as string });
          else if (frame.type === 'error') fail(new Error(`websocket error frame: ${frame.code}: ${frame.message}`));
        } catch (err) {
          fail(err as Error);
        }
      });
    });
  },
};
