/**
 * HTTP assertions shared by the endpoint specs: the exact error shape, no-store answers, unique
 * stream names, and reading a stream's retained log through /poll.
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
