/**
 * Request bodies: JSON, also when sent as text/plain (XDomainRequest and CORS "simple" requests can
 * send nothing else). The size cap is enforced while reading: a body over it is refused with 413 as
 * soon as the limit is crossed (or at once from Content-Length), never buffered whole.
 */
import { isUtf8 } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import { BadRequestError, PayloadTooLargeError, RequestTimeoutError, UnsupportedMediaTypeError } from '../errors.js';
import type { Context } from 'koa';
import { requestHeader, setHeader } from './headers.js';
import { SameLengthDeadlines, type Deadline } from '../deadlines.js';

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

/**
 * The parsed JSON body; rejects with 400, 408, 413 or 415 GatewayErrors. Not an async function:
 * the promise is the read's own (CappedRead), which parses the body when it ends, so a body costs
 * one promise, not that and an async function's frame and promise around it.
 */
export function readJsonBody(ctx: Context, limits: BodyLimits): Promise<unknown> {
  try {
    const limitBytes = limits.bytes;
    const parsed = parsedByHost(ctx);
    if (parsed !== undefined) return Promise.resolve(parsed);
    if (!JSON_TYPES.has(mediaType(requestHeader(ctx, 'content-type')))) {
      throw new UnsupportedMediaTypeError('send the body as application/json (text/plain holding JSON is accepted too)');
    }
    const declared = Number(requestHeader(ctx, 'content-length') || '0');
    if (declared > limitBytes) {
      setHeader(ctx, 'connection', 'close');
      throw new PayloadTooLargeError(`request body exceeds ${limitBytes} bytes`);
    }
    return readCapped(ctx, limits);
  } catch (err) {
    return Promise.reject(err);
  }
}

/** A whole body's JSON; throws a BadRequestError. */
function parseJsonBody(raw: Buffer): unknown {
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

/**
 * The request's body being read, as its shared listeners find it (CappedRead), or READ_OVER once
 * that read ended (the listeners stay on the request). A request whose body is read gains this
 * one field: one hidden-class transition, the same for every such request.
 */
const READING = Symbol('pollgate.bodyRead');
const READ_OVER = 'over';

interface ReadingRequest extends IncomingMessage {
  [READING]?: CappedRead | typeof READ_OVER;
}

/** The read in progress on `req`, if any. */
function readOf(req: ReadingRequest): CappedRead | undefined {
  const read = req[READING];
  return read === undefined || read === READ_OVER ? undefined : read;
}

/**
 * A body being read to its end, refused once it passes its cap, or cut at its deadline. The
 * request's listeners and the deadline's expiry are functions shared by every read, which
 * find the read on the request (or are handed it): each read had made six closures and their
 * context, on every /send (docs/PERFORMANCE.md, "A body read without closures").
 */
class CappedRead {
  readonly chunks: Buffer[] = [];
  size = 0;
  readonly deadline: Deadline;

  constructor(
    readonly ctx: Context,
    readonly limits: BodyLimits,
    readonly resolve: (json: unknown) => void,
    readonly reject: (err: Error) => void,
  ) {
    this.deadline = limits.deadlines.start(expireRead, this);
  }
}

/** The body's JSON (parseJsonBody), read within its cap and deadline. */
function readCapped(ctx: Context, limits: BodyLimits): Promise<unknown> {
  const req = ctx.req as ReadingRequest;
  // One read at a time: a second would see every chunk twice.
  if (readOf(req)) return Promise.reject(new Error('the request body is already being read'));
  return new Promise((resolve, reject) => {
    // The listeners are put on once a request: a read after one that ended finds them there.
    const listening = req[READING] === READ_OVER;
    req[READING] = new CappedRead(ctx, limits, resolve, reject);
    if (listening) return;
    req.on('data', onReadData);
    req.on('end', onReadEnd);
    // 'error' tells why a request was cut short (a socket reset, a malformed chunk); 'close'
    // comes after it, and alone when the request was destroyed without an error.
    req.on('error', onReadError);
    req.on('close', onReadClosed);
  });
}

/**
 * The read of `req`, taken off it with its deadline: it is over. Its listeners stay on the request
 * and do nothing from now on (each finds no read); the request goes with them, and a later read
 * of it uses them again. Taking them off cost every send four removeListener calls.
 */
function endRead(req: ReadingRequest): CappedRead | undefined {
  const read = readOf(req);
  if (!read) return undefined;
  req[READING] = READ_OVER;
  read.limits.deadlines.done(read.deadline);
  return read;
}

/** Refuses the rest of a body: never read, and the connection is closed after the answer. */
function refuseRest(read: CappedRead, err: Error): void {
  read.ctx.req.pause();
  setHeader(read.ctx, 'connection', 'close');
  read.reject(err);
}

function expireRead(read: CappedRead): void {
  const req = read.ctx.req as ReadingRequest;
  if (readOf(req) !== read) return;
  endRead(req);
  refuseRest(read, new RequestTimeoutError(`request body not received within ${read.limits.deadlines.lengthMs} ms`));
}

function onReadData(this: ReadingRequest, chunk: Buffer): void {
  const read = readOf(this);
  if (!read) return;
  read.size += chunk.length;
  if (read.size > read.limits.bytes) {
    endRead(this);
    refuseRest(read, new PayloadTooLargeError(`request body exceeds ${read.limits.bytes} bytes`));
    return;
  }
  read.chunks.push(chunk);
}

function onReadEnd(this: ReadingRequest): void {
  const read = endRead(this);
  if (!read) return;
  // A body that came in one chunk is that chunk: no copy of it.
  const raw = read.chunks.length === 1 ? read.chunks[0]! : Buffer.concat(read.chunks, read.size);
  let json: unknown;
  try {
    json = parseJsonBody(raw);
  } catch (err) {
    read.reject(err as Error);
    return;
  }
  read.resolve(json);
}

function onReadError(this: ReadingRequest, err: Error): void {
  endRead(this)?.reject(new BadRequestError(`request body could not be read: ${err.message}`));
}

function onReadClosed(this: ReadingRequest): void {
  endRead(this)?.reject(new BadRequestError('request body could not be read: the request was closed before its end'));
}
