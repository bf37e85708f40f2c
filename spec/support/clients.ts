/**
 * Real clients for transport tests: a `ws` client that queues frames so tests await them, a raw
 * WebSocket handshake for refusal checks, an `eventsource` client that queues events, and fetch
 * helpers for /send and /poll. Every helper returns something the test closes.
 */
import { request } from 'node:http';
import { randomBytes } from 'node:crypto';
import { WebSocket, type ClientOptions } from 'ws';
import { EventSource } from 'eventsource';

/** A frame the gateway sent, parsed. */
export type Frame = Record<string, any>;

/** Settles with `value` after `ms`, or rejects with a timeout naming what was awaited. */
function deadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Resolves once `check` holds, looking again on every turn of the event loop (for state that emits no event). */
export async function until(check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setImmediate(r));
  }
}

/** Items arriving over time; next() takes the first one matching, waiting if needed. */
class Inbox<T> {
  private readonly items: T[] = [];
  private readonly waiting: Array<{ match: (t: T) => boolean; resolve: (t: T) => void }> = [];

  push(item: T): void {
    const i = this.waiting.findIndex((w) => w.match(item));
    if (i >= 0) this.waiting.splice(i, 1)[0]!.resolve(item);
    else this.items.push(item);
  }

  next(match: (t: T) => boolean, ms: number, what: string): Promise<T> {
    const i = this.items.findIndex(match);
    if (i >= 0) return Promise.resolve(this.items.splice(i, 1)[0]!);
    const entry = { match, resolve: (_: T) => {} };
    const p = new Promise<T>((resolve) => (entry.resolve = resolve));
    this.waiting.push(entry);
    return deadline(p, ms, what).finally(() => {
      const j = this.waiting.indexOf(entry);
      if (j >= 0) this.waiting.splice(j, 1);
    });
  }

  /** Everything not taken yet. */
  get pending(): readonly T[] {
    return this.items;
  }
}

export class WsClient {
  private readonly inbox = new Inbox<Frame>();
  readonly closed: Promise<{ code: number; reason: string }>;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => this.inbox.push(isBinary ? { type: '<binary>' } : (JSON.parse(data.toString()) as Frame)));
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    ws.on('error', () => {}); // surfaced through `closed`
  }

  /** Opens `ws://…/ws` and resolves once open; rejects with the HTTP status when refused. */
  static open(httpUrl: string, options: ClientOptions & { token?: string; query?: string } = {}): Promise<WsClient> {
    const { token, query, ...rest } = options;
    const url = `${httpUrl.replace(/^http/, 'ws')}/ws${query ? `?${query}` : ''}`;
    const ws = new WebSocket(url, { ...rest, headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...rest.headers } });
    const client = new WsClient(ws);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(client));
      ws.once('error', reject);
    });
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** The next frame of this type (and matching `match`), waiting up to `ms`. */
  next(type: string, match: (f: Frame) => boolean = () => true, ms = 5000): Promise<Frame> {
    return this.inbox.next((f) => f.type === type && match(f), ms, `a "${type}" frame`);
  }

  /** The first frame answering `ref`, whatever its type (a confirmation, an ack or an error). */
  reply(ref: string | number, ms = 5000): Promise<Frame> {
    return this.inbox.next((f) => f.ref === ref, ms, `an answer to ref ${ref}`);
  }

  /** Subscribes and resolves with the confirmation frame. */
  async subscribe(streams: string[], extra: Record<string, unknown> = {}): Promise<Frame> {
    const ref = randomBytes(4).toString('hex');
    this.send({ type: 'subscribe', streams, ref, ...extra });
    // One wait for either answer: a race of two waits left the loser's timer running after the test.
    const f = await this.inbox.next((x) => (x.type === 'subscribed' || x.type === 'error') && x.ref === ref, 5000, 'a "subscribed" frame');
    if (f.type === 'error') throw new Error(`subscribe refused: ${f.code}: ${f.message}`);
    return f;
  }

  /** Collects delivered messages until `n` arrived; resolves with them and the last cursor. */
  async messages(n: number, ms = 5000): Promise<{ messages: Frame[]; cursor: string; frames: Frame[] }> {
    const messages: Frame[] = [];
    const frames: Frame[] = [];
    let cursor = '';
    while (messages.length < n) {
      const f = await this.next('messages', () => true, ms);
      frames.push(f);
      messages.push(...f.messages);
      cursor = f.cursor;
    }
    return { messages, cursor, frames };
  }

  /** Frames received and not taken by next(). */
  get unread(): readonly Frame[] {
    return this.inbox.pending;
  }

  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    this.ws.terminate();
    await this.closed;
  }
}

/** A raw WebSocket handshake: resolves with the HTTP answer; rejects if the server upgrades. */
export function handshake(httpUrl: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${httpUrl}${path}`, {
      headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': randomBytes(16).toString('base64'), ...headers },
    });
    req.once('upgrade', (res, socket) => {
      socket.destroy();
      reject(new Error(`the server upgraded (${res.statusCode})`));
    });
    req.once('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.once('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.once('error', reject);
    req.end();
  });
}

/** One SSE event as the client saw it. */
export interface SseEvent {
  type: string;
  data: string;
  lastEventId: string;
}

export class SseClient {
  private readonly inbox = new Inbox<SseEvent>();
  readonly es: EventSource;
  /** Number of times the connection opened (1 + reconnects). */
  opens = 0;

  constructor(url: string, types: string[] = ['message', 'ready', 'gap', 'reset']) {
    this.es = new EventSource(url);
    this.es.addEventListener('open', () => this.opens++);
    for (const type of types) {
      this.es.addEventListener(type, (e: MessageEvent) => this.inbox.push({ type, data: e.data as string, lastEventId: e.lastEventId }));
    }
  }

  next(type: string, ms = 5000): Promise<SseEvent> {
    return this.inbox.next((e) => e.type === type, ms, `an SSE "${type}" event`);
  }

  /** The next event of any of the given types. */
  nextOf(types: string[], ms = 5000): Promise<SseEvent> {
    return this.inbox.next((e) => types.includes(e.type), ms, `an SSE event of ${types.join('/')}`);
  }

  close(): void {
    this.es.close();
  }
}

export async function sendMessages(url: string, apiKey: string, body: unknown): Promise<any> {
  const res = await fetch(`${url}/send`, { method: 'POST', headers: { Authorization: `Bearer ${apiKey}`, 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  if (res.status !== 200) throw new Error(`/send answered ${res.status}: ${await res.text()}`);
  return res.json();
}

/** Sends `data` values one message each to a stream, in order, as one batch. */
export function sendAll(url: string, apiKey: string, stream: string, data: unknown[]): Promise<any> {
  return sendMessages(url, apiKey, { messages: data.map((d) => ({ stream, data: d })) });
}

export async function poll(url: string, apiKey: string, params: Record<string, string>): Promise<any> {
  const res = await fetch(`${url}/poll?${new URLSearchParams({ timeout: '0', ...params })}`, { headers: { Authorization: `Bearer ${apiKey}` } });
  if (res.status !== 200) throw new Error(`/poll answered ${res.status}: ${await res.text()}`);
  return res.json();
}
