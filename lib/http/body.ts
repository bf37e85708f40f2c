/**
 * Request bodies: JSON, also when sent as text/plain (XDomainRequest and CORS "simple" requests can
 * send nothing else). The size cap is enforced while reading: a body over it is refused with 413 as
 * soon as the limit is crossed (or at once from Content-Length), never buffered whole.
 */
import { isUtf8 } from 'node:buffer';
import { BadRequestError, PayloadTooLargeError, RequestTimeoutError, UnsupportedMediaTypeError } from '../errors.js';
import type { Context } from 'koa';
import { requestHeader, setHeader } from './headers.js';
import { SameLengthDeadlines } from '../deadlines.js';

/** How large a request body may be, and how long it may take to arrive (limits.bodyBytes, limits.bodyTimeoutMs). */
export interface BodyLimits {
  bytes: number;
  /** Every body read's deadline, in one queue with one timer (lib/deadlines.ts). */
  deadlines: SameLengthDeadlines;
}

export function bodyLimits(bytes: number, timeoutMs: number): BodyLimits {
  return { bytes, deadlines: new SameLengthDeadlines(timeoutMs) };
}

const JSON_TYPES = new Set(['application/json', 'text/plain', '']);

/** The parsed JSON body; throws 400, 408, 413 or 415 GatewayErrors. */
export async function readJsonBody(ctx: Context, limits: BodyLimits): Promise<unknown> {
  const limitBytes = limits.bytes;
  const parsed = parsedByHost(ctx);
  if (parsed !== undefined) return parsed;
  if (!JSON_TYPES.has(mediaType(requestHeader(ctx, 'content-type')))) {
    throw new UnsupportedMediaTypeError('send the body as application/json (text/plain holding JSON is accepted too)');
  }
  const declared = Number(requestHeader(ctx, 'content-length') || '0');
  if (declared > limitBytes) {
    setHeader(ctx, 'connection', 'close');
    throw new PayloadTooLargeError(`request body exceeds ${limitBytes} bytes`);
  }
  const raw = await readCapped(ctx, limitBytes, limits.deadlines);
  // Validated whole, then decoded: no replacement characters can slip in.
  if (!isUtf8(raw)) throw new BadRequestError('request body is not valid UTF-8');
  const text = raw.toString('utf8');
  try {
    return JSON.parse(text);
  } catch {
    // Only a body that failed to parse is looked at again: no trimmed copy of every body.
    if (text.trim() === '') throw new BadRequestError('request body is empty: send a JSON object');
    throw new BadRequestError('request body is not valid JSON');
  }
}

/** A Content-Type's media type, lower-cased, without its parameters ('' when absent). */
function mediaType(header: string): string {
  const semi = header.indexOf(';');
  return (semi < 0 ? header : header.slice(0, semi)).trim().toLowerCase();
}

/**
 * In a host app, a body parser mounted before the gateway has read the body already: use what it
 * parsed (its own size limit applied), or say plainly that the body is gone, never wait for it.
 */
function parsedByHost(ctx: Context): unknown {
  // Nobody read the body (a parser that skipped a text/plain body leaves it unread): read it here.
  if (!ctx.req.readableEnded) return undefined;
  const body = (ctx.request as { body?: unknown }).body;
  if (body === undefined) {
    throw new BadRequestError('the request body was read before the gateway saw it: mount pollgate before body-parsing middleware');
  }
  if (typeof body !== 'string') return body;
  try {
    return JSON.parse(body);
  } catch {
    throw new BadRequestError('request body is not valid JSON');
  }
}

function readCapped(ctx: Context, limitBytes: number, deadlines: SameLengthDeadlines): Promise<Buffer> {
  const req = ctx.req;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const deadline = deadlines.start(() => {
      cleanup();
      // The rest is never read: the connection is closed after the 408.
      req.pause();
      setHeader(ctx, 'connection', 'close');
      reject(new RequestTimeoutError(`request body not received within ${deadlines.lengthMs} ms`));
    });
    const cleanup = () => {
      deadlines.done(deadline);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limitBytes) {
        cleanup();
        // Stop reading; the connection is closed after the 413 so the rest is never buffered.
        req.pause();
        setHeader(ctx, 'connection', 'close');
        reject(new PayloadTooLargeError(`request body exceeds ${limitBytes} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(new BadRequestError(`request body could not be read: ${err.message}`));
    };
    const onAborted = () => onError(new Error('client aborted'));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
  });
}
