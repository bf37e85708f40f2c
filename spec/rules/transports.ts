/**
 * The client side of every transport a shared rule is checked on, reduced to what the client saw:
 * an error as { status, code, message, retryAfter } whichever way it arrived (an HTTP answer, a
 * WebSocket frame), so the rule specs can compare transports with one deep-equal. Everything a
 * helper opens is registered with a Closers, which the spec empties in afterEach.
 */
import { WsClient, type Frame } from '../support/clients.js';

/** An error as a client saw it; `status` is absent for WebSocket frames (they carry none). */
export interface Seen {
  status?: number;
  code: string;
  message: string;
  retryAfter?: number;
}

type Ref = string | number;

/** Things to close after a test, closed in reverse order of opening. */
export class Closers {
  private readonly fns: (() => unknown)[] = [];

  add<T>(thing: T, close: (t: T) => unknown): T {
    this.fns.push(() => close(thing));
    return thing;
  }

  async closeAll(): Promise<void> {
    while (this.fns.length) await this.fns.pop()!();
  }
}

/** The `{"error":{code,message}}` of an answer, with its status and Retry-After. */
export async function httpError(res: Response): Promise<Seen> {
  const text = await res.text();
  let body: { error?: { code: string; message: string } };
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`HTTP ${res.status} is not a JSON error answer: ${text.slice(0, 200)}`);
  }
  if (!body.error) throw new Error(`HTTP ${res.status} is not an error answer: ${text.slice(0, 200)}`);
  const retryAfter = res.headers.get('retry-after');
  return { status: res.status, code: body.error.code, message: body.error.message, ...(retryAfter === null ? {} : { retryAfter: Number(retryAfter) }) };
}

/** An error frame as a Seen (no status: frames carry none). */
export function frameError(f: Frame): Seen {
  if (f.type !== 'error') throw new Error(`expected an error frame, got ${JSON.stringify(f)}`);
  return { code: f.code, message: f.message, ...(f.retryAfter === undefined ? {} : { retryAfter: f.retryAfter }) };
}

/** Opens a WebSocket with a bearer credential; closed by `closers`. */
export async function openWs(url: string, token: string, closers: Closers): Promise<WsClient> {
  return closers.add(await WsClient.open(url, { token }), (c) => c.close());
}

/**
 * Resolves with the reply (`ack`, `subscribed`, `error`...: the frame echoing its ref) to each of
 * `refs`, once every one has its reply. Frames are handled in order, so replies come back in order.
 */
export function replies(c: WsClient, refs: readonly Ref[], ms = 10_000): Promise<Map<Ref, Frame>> {
  const wanted = new Set<Ref>(refs);
  const got = new Map<Ref, Frame>();
  return new Promise((resolve, reject) => {
    const done = (err?: Error) => {
      clearTimeout(timer);
      c.ws.off('message', onMessage);
      if (err) reject(err);
      else resolve(got);
    };
    const timer = setTimeout(() => done(new Error(`${got.size} of ${wanted.size} replies after ${ms} ms`)), ms);
    const onMessage = (data: Buffer) => {
      const f = JSON.parse(data.toString()) as Frame;
      if (wanted.has(f.ref) && !got.has(f.ref)) got.set(f.ref, f);
      if (got.size === wanted.size) done();
    };
    c.ws.on('message', onMessage);
  });
}

/** Sends one frame of `type` and resolves with its reply (ack, subscribed... or error). */
export async function request(c: WsClient, type: string, frame: Record<string, unknown>): Promise<Frame> {
  const ref = `r${Math.random().toString(36).slice(2)}`;
  const reply = replies(c, [ref]);
  c.send({ type, ...frame, ref });
  return (await reply).get(ref)!;
}

/** Sends one `send` frame and resolves with its reply (ack or error). */
export function wsSend(c: WsClient, frame: Record<string, unknown>): Promise<Frame> {
  return request(c, 'send', frame);
}

/** POST /send with a bearer credential; the raw answer. */
export function httpSend(url: string, credential: string, body: unknown): Promise<Response> {
  return fetch(`${url}/send`, {
    method: 'POST',
    headers: { authorization: `Bearer ${credential}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

/** The data of every retained message of `stream`, oldest first, read with the API key. */
export async function storedData(url: string, apiKey: string, stream: string): Promise<unknown[]> {
  const res = await fetch(`${url}/poll?${new URLSearchParams({ streams: stream, since: 'earliest', timeout: '0', limit: '1000' })}`, {
    headers: { authorization: `Bearer ${apiKey}` },
  });
  const body = (await res.json()) as { messages: { data: unknown }[] };
  if (res.status !== 200) throw new Error(`/poll answered ${res.status}: ${JSON.stringify(body)}`);
  return body.messages.map((m) => m.data);
}

/** One event of an event stream: its type (`message` when it names none), data and id. */
export interface SseEvent {
  type: string;
  data: string;
  id?: string;
}

/** GET /sse (query and headers as given); the raw answer, aborted by `closers`. */
export async function openSse(url: string, query: string, headers: Record<string, string>, closers: Closers): Promise<Response> {
  const ac = closers.add(new AbortController(), (a) => a.abort());
  return fetch(`${url}/sse?${query}`, { headers, signal: ac.signal });
}

/** Reads an event stream until it holds `n` message events; resolves with every event so far. */
export async function sseEvents(res: Response, n: number, ms = 10_000): Promise<SseEvent[]> {
  if (res.status !== 200) throw new Error(`/sse answered ${res.status}: ${await res.text()}`);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const events: SseEvent[] = [];
  const timer = setTimeout(() => void reader.cancel(), ms);
  let text = '';
  try {
    while (events.filter((e) => e.type === 'message').length < n) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the event stream ended (or ${ms} ms passed) after ${events.length} events`);
      text += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = text.indexOf('\n\n')) >= 0) {
        const block = text.slice(0, end);
        text = text.slice(end + 2);
        const e: SseEvent = { type: 'message', data: '' };
        for (const line of block.split('\n')) {
          const [field, value = ''] = line.split(/: ?(.*)/s);
          if (field === 'event') e.type = value;
          else if (field === 'data') e.data = value;
          else if (field === 'id') e.id = value;
        }
        if (e.data !== '' || e.id !== undefined) events.push(e);
      }
    }
  } finally {
    clearTimeout(timer);
  }
  await reader.cancel();
  return events;
}
