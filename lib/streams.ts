/**
 * Stream names, ids and stream patterns: the grammar every transport validates against
 * before anything is authorised or stored.
 */
import { BadRequestError } from './errors.js';

/** 1-200 chars of [A-Za-z0-9_.:@-]. No braces: the name is used inside a Redis hash tag. */
export const STREAM_NAME = /^[A-Za-z0-9_.:@-]{1,200}$/;
/** The prefix of a `prefix*` pattern: characters of the name grammar only. */
const PATTERN_PREFIX = /^[A-Za-z0-9_.:@-]+$/;
/** Message ids given by senders (idempotency keys): 1-64 chars of [A-Za-z0-9_-]. */
export const MESSAGE_ID = /^[A-Za-z0-9_-]{1,64}$/;
/** Client-chosen connection ids for one-parked-poll-per-connection. */
export const CONN_ID = /^[A-Za-z0-9_-]{1,64}$/;

export function isStreamName(value: unknown): value is string {
  return typeof value === 'string' && STREAM_NAME.test(value);
}

export function assertStreamName(value: unknown, field = 'stream'): string {
  if (!isStreamName(value)) {
    throw new BadRequestError(`${field} must be 1-200 characters of A-Z a-z 0-9 _ . : @ -`);
  }
  return value;
}

/**
 * Parses a list of streams given as an array or a comma-separated string; removes duplicates,
 * keeps order. Throws BadRequestError when empty, too long or malformed.
 */
export function parseStreamList(value: unknown, max: number, field = 'streams'): string[] {
  let items: unknown[];
  if (typeof value === 'string') items = value.split(',');
  else if (Array.isArray(value)) items = value;
  else throw new BadRequestError(`${field} is required: a comma-separated string or an array of stream names`);
  if (items.length === 0 || (items.length === 1 && items[0] === '')) throw new BadRequestError(`${field} must name at least one stream`);
  if (items.length > max) throw new BadRequestError(`${field} may name at most ${max} streams`);
  const out = new Set<string>();
  for (const item of items) out.add(assertStreamName(item, `each of ${field}`));
  return [...out];
}

/**
 * A stream pattern from a token: an exact name, or a name prefix followed by a single trailing `*`.
 * Anything else (a `*` elsewhere, characters outside the grammar) matches nothing.
 */
export function matchesPattern(pattern: string, stream: string): boolean {
  if (pattern.endsWith('*')) {
    const prefix = pattern.slice(0, -1);
    if (prefix !== '' && !PATTERN_PREFIX.test(prefix)) return false;
    return stream.startsWith(prefix);
  }
  return pattern === stream && STREAM_NAME.test(pattern);
}

export function matchesAny(patterns: readonly string[], stream: string): boolean {
  for (const p of patterns) if (matchesPattern(p, stream)) return true;
  return false;
}

/**
 * matchesAny(patterns, ·) with the patterns checked once: a token's patterns are tested on every
 * poll and send it makes, and the token is cached (lib/auth.ts).
 */
export function compilePatterns(patterns: readonly string[]): (stream: string) => boolean {
  const exact = new Set<string>();
  const prefixes: string[] = [];
  for (const p of patterns) {
    if (!p.endsWith('*')) {
      if (STREAM_NAME.test(p)) exact.add(p);
      continue;
    }
    const prefix = p.slice(0, -1);
    if (prefix === '') return () => true;
    if (PATTERN_PREFIX.test(prefix)) prefixes.push(prefix);
  }
  return (stream) => {
    if (exact.has(stream)) return true;
    for (const prefix of prefixes) if (stream.startsWith(prefix)) return true;
    return false;
  };
}
