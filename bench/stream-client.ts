/**
 * The load generator's WebSocket and SSE clients: one connection per simulated client, subscribed
 * from the oldest message of its streams. Every delivery (a WebSocket `messages` frame, or the SSE
 * message events of one chunk read from the socket) goes to `onMessages`; anything a healthy
 * client should never see (an error frame, a gap, a reset, a dropped connection) to `onProblem`.
 */
import WebSocket from 'ws';
import type { Dispatcher, Pool } from 'undici';
import type { Message } from './client.js';

export type Transport = 'poll' | 'ws' | 'sse';
export type StreamTransport = Exclude<Transport, 'poll'>;

export interface StreamHandlers {
  onMessages(messages: Message[], now: number): void;
  onProblem(what: string): void;
}

export interface StreamClient {
  /** Settles once the subscription is live (`subscribed`, or the SSE `ready` event). */
  readonly ready: Promise<void>;
  /** Drops the connection; nothing is reported after this. */
  close(): void;
}

/** Opens one WebSocket or SSE client; SSE requests go through `sse` (one connection per client). */
export function openStream(transport: StreamTransport, url: string, token: string, stream: string, h: StreamHandlers, sse: Pool): StreamClient {
  return transport === 'ws' ? openWs(url, token, stream, h) : openSse(sse, token, stream, h);
}

function openWs(url: string, token: string, stream: string, h: StreamHandlers): StreamClient {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/ws`, { headers: { authorization: `Bearer ${token}` }, perMessageDeflate: false });
  let closing = false;
  const ready = new Promise<void>((resolve, reject) => {
    ws.once('open', () => ws.send(JSON.stringify({ type: 'subscribe', streams: [stream], since: 'earliest' })));
    ws.on('message', (data) => {
      const now = performance.now();
      const f = JSON.parse(String(data)) as { type: string; messages?: Message[]; gaps?: unknown; resets?: unknown; message?: string };
      if (f.type === 'messages') {
        if (f.gaps || f.resets) h.onProblem(`${stream}: unexpected gap or reset ${JSON.stringify(f)}`);
        h.onMessages(f.messages!, now);
      } else if (f.type === 'subscribed') resolve();
      else if (f.type === 'error') h.onProblem(`${stream}: error frame ${JSON.stringify(f)}`);
    });
    ws.once('error', (err) => {
      reject(err);
      if (!closing) h.onProblem(`${stream}: WebSocket error ${err.message}`);
    });
    ws.once('close', (code) => {
      reject(new Error(`closed with ${code} before subscribing`));
      if (!closing) h.onProblem(`${stream}: WebSocket closed by the gateway (${code})`);
    });
  });
  ready.catch(() => undefined);
  return {
    ready,
    close: () => {
      closing = true;
      ws.terminate();
    },
  };
}

function openSse(p: Pool, token: string, stream: string, h: StreamHandlers): StreamClient {
  const abort = new AbortController();
  let closing = false;
  const ready = new Promise<void>((resolve, reject) => {
    const fail = (what: string) => {
      reject(new Error(what));
      if (!closing) h.onProblem(`${stream}: ${what}`);
    };
    p.request({ method: 'GET', path: `/sse?streams=${encodeURIComponent(stream)}&since=earliest`, headers: { authorization: `Bearer ${token}` }, signal: abort.signal })
      .then((r: Dispatcher.ResponseData) => {
        if (r.statusCode !== 200) {
          void r.body.text().then((t) => fail(`SSE ${r.statusCode}: ${t.slice(0, 200)}`), () => fail(`SSE ${r.statusCode}`));
          return;
        }
        let buffered = '';
        r.body.setEncoding('utf8');
        r.body.on('data', (chunk: string) => {
          const now = performance.now();
          buffered += chunk;
          const messages: Message[] = [];
          let end: number;
          while ((end = buffered.indexOf('\n\n')) >= 0) {
            const ev = parseEvent(buffered.slice(0, end));
            buffered = buffered.slice(end + 2);
            if (ev.type === 'ready') resolve();
            else if (ev.type === 'message' && ev.data) messages.push(JSON.parse(ev.data) as Message);
            else if (ev.type === 'gap' || ev.type === 'reset') h.onProblem(`${stream}: unexpected ${ev.type} ${ev.data}`);
          }
          if (messages.length) h.onMessages(messages, now);
        });
        r.body.once('end', () => fail('SSE stream ended by the gateway'));
        r.body.once('error', (err: Error) => fail(`SSE error ${err.message}`));
      }, (err: Error) => fail(`SSE request failed: ${err.message}`));
  });
  ready.catch(() => undefined);
  return {
    ready,
    close: () => {
      closing = true;
      abort.abort();
    },
  };
}

/** One event's type and data; comments (`: keep-alive`) and `retry:` carry neither. */
function parseEvent(text: string): { type: string; data?: string } {
  let type = 'message';
  let data: string | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('event: ')) type = line.slice(7);
    else if (line.startsWith('data: ')) data = data === undefined ? line.slice(6) : `${data}\n${line.slice(6)}`;
  }
  return { type: data === undefined && type === 'message' ? 'none' : type, data };
}

const CHUNK = 500;

/**
 * Opens `count` clients in chunks, each once the previous chunk is subscribed: a burst of
 * thousands of connects overflows the listen backlog (see parkInChunks).
 */
export async function openInChunks(count: number, open: (i: number) => StreamClient): Promise<StreamClient[]> {
  const clients: StreamClient[] = [];
  try {
    for (let i = 0; i < count; ) {
      const end = Math.min(count, i + CHUNK);
      const chunk: Promise<void>[] = [];
      for (; i < end; i++) {
        const c = open(i);
        clients.push(c);
        chunk.push(c.ready);
      }
      await Promise.all(chunk);
    }
  } catch (err) {
    for (const c of clients) c.close();
    throw new Error(`a client failed while subscribing: ${String(err)}`);
  }
  return clients;
}
