/**
 * HTTP helpers shared by the specs: fetch wrappers for /send, /poll and /stats, the exact error
 * shape, no-store answers, unique stream names, and reading a stream's retained log through /poll.
 */
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { expect } from 'chai';
import request, { type Response } from 'supertest';

/** A stream name no other test uses. */
export function uniqueStream(prefix = 'room:'): string {
  return `${prefix}${randomBytes(6).toString('hex')}`;
}

/** The body is exactly `{"error":{"code","message"}}` with this status and code, and no stack trace. */
export function expectError(res: Response, status: number, code: string): { code: string; message: string } {
  expect(res.status, res.text).to.equal(status);
  expect(res.headers['content-type']).to.match(/^application\/json/);
  const body = JSON.parse(res.text);
  expect(Object.keys(body)).to.deep.equal(['error']);
  expect(Object.keys(body.error).sort()).to.deep.equal(['code', 'message']);
  expect(body.error.code).to.equal(code);
  expect(body.error.message).to.be.a('string').that.is.not.empty;
  expect(res.text).not.to.match(/\n\s+at |node_modules|\.[jt]s:\d+/);
  return body.error;
}

export function expectNoStore(res: Response): void {
  expect(res.headers['cache-control']).to.include('no-store');
}

/** Every retained message of a stream, read with the API key (oldest first). */
export async function retained(url: string, apiKey: string, stream: string): Promise<{ stream: string; seq: number; id: string; data: unknown }[]> {
  const res = await request(url)
    .get('/poll')
    .query({ streams: stream, since: 'earliest', timeout: 0, limit: 1000 })
    .set('Authorization', `Bearer ${apiKey}`);
  expect(res.status, res.text).to.equal(200);
  return res.body.messages;
}

/** An in-memory pino destination; `waitFor` resolves with the first line (parsed) that matches. */
export class LogCapture extends Writable {
  readonly lines: Record<string, any>[] = [];
  private waiting: { match: (l: Record<string, any>) => boolean; resolve: (l: Record<string, any>) => void }[] = [];

  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    for (const text of chunk.toString().split('\n').filter(Boolean)) {
      const line = JSON.parse(text);
      this.lines.push(line);
      this.waiting = this.waiting.filter((w) => (w.match(line) ? (w.resolve(line), false) : true));
    }
    done();
  }

  get text(): string {
    return this.lines.map((l) => JSON.stringify(l)).join('\n');
  }

  waitFor(match: (l: Record<string, any>) => boolean): Promise<Record<string, any>> {
    const found = this.lines.find(match);
    if (found) return Promise.resolve(found);
    return new Promise((resolve) => this.waiting.push({ match, resolve }));
  }
}

export interface PollBody {
  messages: { stream: string; seq: number; id: string; ts: number; data: unknown }[];
  cursor: string;
  gaps?: { stream: string; from: number; to: number }[];
  resets?: string[];
}

export async function send(url: string, key: string, body: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${url}/send`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

export async function sendOk(url: string, key: string, body: unknown): Promise<any> {
  const r = await send(url, key, body);
  if (r.status !== 200) throw new Error(`send failed: ${r.status} ${JSON.stringify(r.json)}`);
  return r.json;
}

export async function poll(url: string, key: string, params: Record<string, string | number | undefined>, signal?: AbortSignal): Promise<PollBody> {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) q.set(k, String(v));
  const res = await fetch(`${url}/poll?${q}`, { headers: { authorization: `Bearer ${key}` }, signal });
  const json = await res.json();
  if (res.status !== 200) throw new Error(`poll failed: ${res.status} ${JSON.stringify(json)}`);
  return json as PollBody;
}

/** GET /stats of a gateway (API key). */
export async function stats(url: string, key: string): Promise<{ parkedPolls: number; waiters: number; subscribedStreams: number; [k: string]: unknown }> {
  const res = await fetch(`${url}/stats`, { headers: { authorization: `Bearer ${key}` } });
  if (res.status !== 200) throw new Error(`stats failed: ${res.status}`);
  return (await res.json()) as any;
}

/** Resolves once a gateway (possibly another process) reports at least `n` parked polls. */
export async function untilParked(url: string, key: string, n: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await stats(url, key)).parkedPolls < n) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${n} parked polls at ${url}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** expectError for a fetch Response: the status, the code, and the exact error shape. */
export async function expectFetchError(res: globalThis.Response, status: number, code: string): Promise<void> {
  const text = await res.text();
  expect(res.status, text).to.equal(status);
  const body = JSON.parse(text);
  expect(Object.keys(body)).to.deep.equal(['error']);
  expect(body.error.code, text).to.equal(code);
}
