/**
 * One HTTP request and its answer, as the routes and the request middleware see it. Koa's context
 * has this shape, and so does RawExchange, the lean version the fast path (lib/http/fast-path.ts)
 * builds straight on node:http for the hot endpoints. Code written against HttpExchange runs
 * unchanged on both, so each rule (errors, CORS, headers, logging) still has one owner.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { clientIp } from './client-ip.js';

export interface HttpExchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly method: string;
  /** The request target as received (path and query). */
  readonly originalUrl: string;
  /** Query parameters: a repeated name gives an array. */
  readonly query: Record<string, unknown>;
  /** The client address (X-Forwarded-For only for the trusted proxy hops). */
  readonly ip: string;
  /** Per-request values shared by middleware and routes (request id, JSONP callback, ...). */
  readonly state: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  status: number;
  /** The Content-Type of the answer. */
  type: string;
  body: unknown;
  /** A request header, '' when absent. */
  get(field: string): string;
  /** Sets (replaces) an answer header. */
  set(field: string, value: string): void;
  /** Adds a field to the Vary header. */
  vary(field: string): void;
  /**
   * Lets the route return before its answer is known (a parked poll); it calls `answer` once
   * it is. Only the fast path has it: with Koa the route awaits its answer.
   */
  answerLater?(): LaterAnswer;
}

export interface LaterAnswer {
  /** `fill` sets status, type and body as a route would; its errors are rendered as a route's are. */
  answer(fill: () => void): void;
}

/** How the fast path finishes an exchange: after its route returned, or later (answerLater). */
export interface ExchangeFinisher {
  /** Writes the answer; with `failure`, the error it carries (rendered as the error middleware would). */
  finish(ex: RawExchange, ...failure: [] | [unknown]): void;
}

/**
 * Query parameters parsed exactly as Koa 3 parses `ctx.query` (URLSearchParams; a repeated name
 * gives an array; every name is an own property, `__proto__` included), so a request reads the
 * same on either path.
 */
export function parseQuery(search: string): Record<string, unknown> {
  return (search[0] !== '?' && splitQuery(search)) || searchParams(search);
}

function searchParams(search: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of new URLSearchParams(search)) addParam(out, name, value);
  return out;
}

/**
 * The same parse without a URLSearchParams and its iterator, for the common query: well-formed
 * escapes of UTF-8 (stream names escape ':'), base64url cursors and tokens. Returns undefined,
 * for URLSearchParams to decide, when a piece has a malformed escape (URLSearchParams keeps it
 * or writes U+FFFD where decodeURIComponent throws).
 */
function splitQuery(search: string): Record<string, unknown> | undefined {
  const out: Record<string, unknown> = {};
  for (let start = 0; start <= search.length; ) {
    let end = search.indexOf('&', start);
    if (end < 0) end = search.length;
    if (end > start) {
      const eq = search.indexOf('=', start);
      const name = decodePiece(search.slice(start, eq < 0 || eq > end ? end : eq));
      const value = eq < 0 || eq > end ? '' : decodePiece(search.slice(eq + 1, end));
      if (name === undefined || value === undefined) return undefined;
      addParam(out, name, value);
    }
    start = end + 1;
  }
  return out;
}

const LONE_SURROGATE = /[\uD800-\uDFFF]/;

function decodePiece(piece: string): string | undefined {
  // URLSearchParams writes U+FFFD for a surrogate (req.url never holds one: it is built from bytes).
  if (LONE_SURROGATE.test(piece)) return undefined;
  const spaced = piece.indexOf('+') < 0 ? piece : piece.replaceAll('+', ' ');
  if (spaced.indexOf('%') < 0) return spaced;
  try {
    return decodeURIComponent(spaced);
  } catch {
    return undefined;
  }
}

function addParam(out: Record<string, unknown>, name: string, value: string): void {
  if (!Object.prototype.hasOwnProperty.call(out, name)) {
    // defineProperty, not assignment: a parameter named __proto__ must be an own property.
    if (name === '__proto__') Object.defineProperty(out, name, { value, writable: true, enumerable: true, configurable: true });
    else out[name] = value;
    return;
  }
  const prev = out[name];
  out[name] = Array.isArray(prev) ? [...prev, value] : [prev, value];
}

/**
 * Header slots a RawExchange starts with: 12 headers, enough for an answer with CORS and
 * Retry-After (a parked poll holds these slots for its whole hold; more headers grow the array).
 */
const HEAD_SLOTS = 24;

/** Lower-cased header names asked for; the callers ask for a few constants, so it stays tiny. */
const LOWER_NAMES = new Map<string, string>();

/** `field.toLowerCase()` without lower-casing the same constant on every request. */
function lowerName(field: string): string {
  let lower = LOWER_NAMES.get(field);
  if (lower === undefined) {
    lower = field.toLowerCase();
    if (LOWER_NAMES.size < 256) LOWER_NAMES.set(field, lower);
  }
  return lower;
}

/**
 * Whether two header names are the same, ignoring ASCII case (header names are ASCII tokens),
 * without allocating: every set() compares its name with each one set before it.
 */
export function sameName(a: string, b: string): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 65 && x <= 90) x += 32;
    if (y >= 65 && y <= 90) y += 32;
    if (x !== y) return false;
  }
  return true;
}

/**
 * HttpExchange over a bare node:http request: the answer's headers kept as the flat name/value
 * array writeHead takes. A parked poll holds its exchange for the whole hold, so it keeps one
 * array and no lower-cased copies of names (docs/PERFORMANCE.md, "What a parked poll holds").
 */
export class RawExchange implements HttpExchange, LaterAnswer {
  readonly method: string;
  readonly originalUrl: string;
  readonly state: Record<string, any> = {}; // eslint-disable-line @typescript-eslint/no-explicit-any
  status = 200;
  type = '';
  body: unknown = undefined;
  /**
   * name, value, name, value, ... in the order first set: `size` entries of an array made large
   * enough for every answer at once (growing it by push cost two more allocations a request).
   */
  private readonly head: string[] = new Array(HEAD_SLOTS);
  private size = 0;
  private parsedQuery?: Record<string, unknown>;
  private address?: string;
  private detached = false;
  /** The route returned before its answer; `answer()` finishes the exchange. */
  answeringLater = false;

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    private readonly search: string,
    private readonly trustedHops: number,
    private readonly finisher: ExchangeFinisher,
  ) {
    this.method = req.method ?? 'GET';
    this.originalUrl = req.url ?? '/';
  }

  get query(): Record<string, unknown> {
    return (this.parsedQuery ??= parseQuery(this.search));
  }

  get ip(): string {
    return (this.address ??= clientIp(this.req, this.trustedHops));
  }

  get(field: string): string {
    const v = this.req.headers[lowerName(field)];
    return (Array.isArray(v) ? v.join(', ') : v) ?? '';
  }

  set(field: string, value: string): void {
    const i = this.indexOf(field);
    if (i >= 0) this.head[i + 1] = value;
    else this.append(field, value);
  }

  private append(field: string, value: string): void {
    this.head[this.size++] = field;
    this.head[this.size++] = value;
  }

  vary(field: string): void {
    const i = this.indexOf('Vary');
    if (i < 0) this.set('Vary', field);
    else if (!this.head[i + 1]!.split(/\s*,\s*/).some((f) => sameName(f, field))) this.head[i + 1] += `, ${field}`;
  }

  private indexOf(field: string): number {
    const head = this.head;
    for (let i = 0; i < this.size; i += 2) if (sameName(head[i]!, field)) return i;
    return -1;
  }

  answerLater(): LaterAnswer {
    this.answeringLater = true;
    return this;
  }

  answer(fill: () => void): void {
    try {
      fill();
    } catch (err) {
      return this.finisher.finish(this, err);
    }
    this.finisher.finish(this);
  }

  /** See takeOver(). */
  detach(): void {
    for (let i = 0; i < this.size; i += 2) this.res.setHeader(this.head[i]!, this.head[i + 1]!);
    this.detached = true;
  }

  /**
   * Writes the answer in one go, as Koa's respond() would for a string body. Nothing is written
   * when the client is gone, the answer was already sent or a route took the response over.
   */
  respond(): void {
    const res = this.res;
    if (this.detached || res.headersSent || res.writableEnded || (res.socket && !res.socket.writable)) return;
    const body = typeof this.body === 'string' ? this.body : JSON.stringify(this.body ?? null);
    if (this.type) this.append('Content-Type', this.type);
    this.append('Content-Length', String(Buffer.byteLength(body)));
    const head = this.head;
    // Cut to what was set (in place): writeHead reads every slot.
    head.length = this.size;
    res.writeHead(this.status, head);
    res.end(body);
  }
}

/**
 * The route answers on `res` itself from now on (an event stream): the headers set so far are put
 * on `res`, and neither the fast path nor Koa answers the request.
 */
export function takeOver(ex: HttpExchange): void {
  if (ex instanceof RawExchange) ex.detach();
  // Koa's ctx.set() writes through to res already; `respond = false` keeps Koa's hands off it.
  else (ex as HttpExchange & { respond: boolean }).respond = false;
}
