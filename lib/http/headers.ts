/**
 * Header access for every request and answer, on the Node objects under the context (ctx.req,
 * ctx.res). Koa's ctx.get() and ctx.set() reach them through a delegate getter that is
 * megamorphic (one closure per name, one call site), lower-case the name on every call, and
 * ctx.set() allocates three arrays per header; with a dozen headers an answer that was a visible
 * share of a request's instructions (docs/PERFORMANCE.md, "The one pipeline").
 *
 * An answer written later (a parked poll's, lib/http/answer-later.ts) collects its head here
 * instead (CollectedHead): setHeader, answerHeader and setBody work the same for both.
 */
import type { ServerResponse } from 'node:http';
import type { Context } from 'koa';

/** A request header by its lower-case name; '' when absent (a repeated header is joined with ", "). */
export function requestHeader(ctx: Context, lowerName: string): string {
  const v = ctx.req.headers[lowerName];
  if (v === undefined) return '';
  return typeof v === 'string' ? v : v.join(', ');
}

/**
 * The head and body of an answer written later, collected and then written in one
 * `writeHead(status, [name, value, ...])`. By the time a parked poll is answered V8 has moved its
 * response to the old generation, and each `res.setHeader` would hang a header table and an array
 * per header on it. What an old object points to survives every scavenge until the next full
 * collection, so the young generation copied that head twice and then promoted it, for each
 * answered poll. A flat list given to writeHead is written, not stored, when the response holds
 * no header of its own; when it does (a host app's middleware set one before the poll parked),
 * Node merges the list into it as setHeader would (docs/PERFORMANCE.md, "A later answer's head").
 */
export class CollectedHead {
  status = 200;
  body = '';
  /** name, value, name, value, ...: names in lower case, each once. */
  private readonly fields: string[] = [];

  set(name: string, value: string): void {
    const fields = this.fields;
    for (let i = 0; i < fields.length; i += 2) {
      if (fields[i] === name) {
        fields[i + 1] = value;
        return;
      }
    }
    fields.push(name, value);
  }

  get(name: string): string | undefined {
    const fields = this.fields;
    for (let i = 0; i < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
    return undefined;
  }

  /** Writes the answer; a HEAD request's gets its Content-Length and no body. */
  writeTo(res: ServerResponse, withBody: boolean): void {
    this.set('content-length', String(Buffer.byteLength(this.body)));
    res.writeHead(this.status, this.fields);
    res.end(withBody ? this.body : undefined);
    releaseWrittenHead(res);
  }
}

/** What `res._header` holds once releaseWrittenHead ran: truthy, as Node reads it after the write. */
export const WRITTEN_HEAD = 'HTTP/1.1 (head written)\r\n\r\n';

/**
 * Lets go of the text of a head that was written. Node keeps it in `res._header` after the write,
 * where it reads it only as "headers sent" (headersSent, and the checks that throw
 * ERR_HTTP_HEADERS_SENT). A parked poll's response is old by the time it is answered, and what an
 * old object points to survives every scavenge until the next full collection: each answered
 * poll's head (about 400 bytes) was copied twice and then promoted. An event stream held its head
 * for the whole life of the connection. A short constant in its place keeps every check as it
 * was (docs/PERFORMANCE.md, "A written head, let go").
 */
export function releaseWrittenHead(res: ServerResponse): void {
  const written = res as ServerResponse & { _header?: unknown; _headerSent?: unknown };
  // Only once Node has handed the head to the socket (`_headerSent`: with the first body bytes, or
  // at the end), and only while it keeps the head as a string: any other shape is left alone.
  if (written._headerSent === true && typeof written._header === 'string') written._header = WRITTEN_HEAD;
}

/**
 * The context whose later answer is being collected, and its head. Collecting is synchronous (the
 * answer and the head rules set everything in one turn), so one slot does; kept off the context,
 * whose state object is old by then: a field written there would itself be promoted.
 */
let collectingFor: Context | undefined;
let collecting: CollectedHead | undefined;

function collectedHead(ctx: Context): CollectedHead | undefined {
  return collectingFor === ctx ? collecting : undefined;
}

/** Collects the head and body of the answer that `fill` sets (see CollectedHead); the caller writes it. */
export function collectHead(ctx: Context, fill: () => void): CollectedHead {
  const outerFor = collectingFor;
  const outer = collecting;
  const head = new CollectedHead();
  collectingFor = ctx;
  collecting = head;
  try {
    fill();
  } finally {
    collectingFor = outerFor;
    collecting = outer;
  }
  return head;
}

/**
 * Sets (replaces) an answer header; nothing once the headers were sent (an event stream's, say).
 * Callers name headers in lower case: Node stores every name lower-cased, and a name that already
 * is one is not copied (a parked poll holds its answer's headers for its whole hold).
 */
export function setHeader(ctx: Context, name: string, value: string): void {
  const collected = collectedHead(ctx);
  if (collected) return collected.set(name, value);
  const res = ctx.res;
  if (!res.headersSent) res.setHeader(name, value);
}

/** An answer header set so far (by its lower-case name), '' when none. */
export function answerHeader(ctx: Context, name: string): string {
  const collected = collectedHead(ctx)?.get(name);
  if (collected !== undefined) return collected;
  const v = ctx.res.getHeader(name);
  if (v === undefined) return '';
  return Array.isArray(v) ? v.join(', ') : String(v);
}

/** The answer's status (when given), type and body, for an answer Koa writes and a later one alike. */
export function setBody(ctx: Context, contentType: string, body: string, status?: number): void {
  const collected = collectedHead(ctx);
  if (collected) {
    if (status !== undefined) collected.status = status;
    collected.set('content-type', contentType);
    collected.body = body;
    return;
  }
  if (status !== undefined) ctx.status = status;
  setHeader(ctx, 'content-type', contentType);
  ctx.body = body;
}
