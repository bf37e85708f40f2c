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
 * Resolves with the reply (an `ack` or an `error` frame) to each of `refs`, once every one has
 * its reply. Frames are handled in order, so the replies come back in the order the frames went.
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
      if ((f.type === 'ack' || f.type === 'error') && wanted.has(f.ref) && !got.has(f.ref)) got.set(f.ref, f);
      if (got.size === wanted.size) done();
    };
    c.ws.on('message', onMessage);
  });
}

/** Sends one `send` frame and resolves with its reply (ack or error). */
export async function wsSend(c: WsClient, frame: Record<string, unknown>, ref: Ref = `s${Math.random().toString(36).slice(2)}`): Promise<Frame> {
  const reply = replies(c, [ref]);
  c.send({ type: 'send', ...frame, ref });
  return (await reply).get(ref)!;
}

/** POST /send with a bearer credential; the raw answer. */
export function httpSend(url: string, credential: string, body: unknown, path = '/send'): Promise<Response> {
  return fetch(`${url}${path}`, {
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
