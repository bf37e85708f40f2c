/**
 * What a subscription may read, for every transport (GET|POST /poll, GET /sse and the WebSocket
 * subscribe frame): which streams, where it starts (cursor, `since`), whether the caller may read
 * them, the start positions, and who holds the connection slot it takes while it stays open.
 */
import type { Principal } from './auth.js';
import type { CursorCodec, Position } from './cursor.js';
import { startPosition, type Since } from './delivery.js';
import { BadRequestError, ForbiddenError } from './errors.js';
import type { Hooks, HookTransport } from './hooks.js';
import type { CapHolder, CapSlot, ConnectionCaps } from './limits/connection-caps.js';
import { parseStreamList } from './streams.js';
import type { Store } from './store/store.js';

/** A subscription as the client asked for it, before it is checked. */
export interface SubscriptionParams {
  /** An array of names or a comma-separated string. */
  streams: unknown;
  /** An opaque cursor from an earlier answer; '', null and undefined mean none. */
  cursor?: unknown;
  /** "now" (default) or "earliest": where streams the cursor does not name start. */
  since?: unknown;
}

/** A subscription that passed the grammar checks. */
export interface Subscription {
  streams: string[];
  cursor?: string;
  since: Since;
}

export interface SubscriptionDeps {
  store: Store;
  cursors: CursorCodec;
  /** Open parked polls, SSE streams and WebSockets per subject, IP and process. */
  caps: ConnectionCaps;
  /** The application's say on reads (lib/hooks.ts), after the token's patterns. */
  hooks?: Hooks;
}

/** Validates a subscription's fields; throws BadRequestError naming the field. */
export function parseSubscription(params: SubscriptionParams, maxStreams: number): Subscription {
  const out: Subscription = { streams: parseStreamList(params.streams, maxStreams), since: 'now' };
  const { cursor, since } = params;
  // null is no value, as for POST /poll's parameters (single() in lib/http/params.ts): a WebSocket
  // subscribe frame's `"cursor": null` is a subscription without one.
  if (cursor !== undefined && cursor !== null && cursor !== '') {
    if (typeof cursor !== 'string') throw new BadRequestError('cursor must be a string');
    out.cursor = cursor;
  }
  if (since !== undefined && since !== null && since !== '') {
    if (since !== 'earliest' && since !== 'now') throw new BadRequestError('since must be "earliest" or "now"');
    out.since = since;
  }
  return out;
}

/** Throws ForbiddenError naming the first stream this principal may not read. */
export function assertCanRead(principal: Principal, streams: readonly string[]): void {
  for (const s of streams) if (!principal.canRead(s)) throw new ForbiddenError(`not allowed to read stream "${s}"`);
}

/** Who a connection's slot is counted for: API keys (trusted backends) only per IP and process. */
export function capHolder(principal: Principal | undefined, ip: string): CapHolder {
  return { subject: principal?.kind === 'client' ? principal.subject : undefined, ip };
}

export class Subscriptions {
  constructor(private readonly deps: SubscriptionDeps) {}

  /**
   * Checks a subscription and resolves where each stream starts: parse, read permission, then
   * positions. Throws BadRequestError, ForbiddenError, InvalidCursorError or store errors.
   */
  async open(principal: Principal, params: SubscriptionParams, maxStreams: number, transport: HookTransport): Promise<Map<string, Position>> {
    const sub = parseSubscription(params, maxStreams);
    await this.authorize(principal, sub.streams, transport);
    return this.positions(sub);
  }

  /**
   * Whether the principal may read these streams: its token's patterns, then the authorize hook
   * (client tokens only). Throws ForbiddenError, or HookUnavailableError when an HTTP hook fails
   * closed. Undefined when nothing needs awaiting (no hook, or an API key): a poll costs no promise.
   */
  authorize(principal: Principal, streams: readonly string[], transport: HookTransport): Promise<void> | undefined {
    assertCanRead(principal, streams);
    const hooks = this.deps.hooks;
    if (!hooks?.active || principal.kind === 'server') return undefined;
    return hooks.assertAllowed(principal, streams, 'read', transport);
  }

  /**
   * The cursor's positions, with streams it does not mention starting now or at their oldest
   * message. Throws InvalidCursorError; store errors reject. A returning client's cursor names
   * every stream it polls: its positions come at once, not through a promise.
   */
  positions(sub: Subscription): Map<string, Position> | Promise<Map<string, Position>> {
    const known = sub.cursor ? this.deps.cursors.decode(sub.cursor, sub.streams) : new Map<string, Position>();
    return known.size === sub.streams.length ? known : this.withStartPositions(sub, known);
  }

  /** positions() for streams the cursor does not name: where each starts, from the store. */
  private async withStartPositions(sub: Subscription, known: Map<string, Position>): Promise<Map<string, Position>> {
    const { store } = this.deps;
    const entries = await Promise.all(
      sub.streams.map(async (s): Promise<[string, Position]> => [s, known.get(s) ?? (await startPosition(store, s, sub.since))]),
    );
    return new Map(entries);
  }

  /** What a parked poll takes a slot with once it parks (lib/transports/long-poll.ts). */
  admission(principal: Principal | undefined, ip: string): { caps: ConnectionCaps; holder: CapHolder } {
    return { caps: this.deps.caps, holder: capHolder(principal, ip) };
  }

  /**
   * Takes a connection slot now (an SSE stream, a WebSocket); the caller releases it when the
   * connection ends. Throws RateLimitedError (429) or OverloadedError (503).
   */
  acquire(principal: Principal | undefined, ip: string): CapSlot {
    return this.deps.caps.acquire(capHolder(principal, ip));
  }
}
