/**
 * Types of pollgate.js, the browser client of a pollgate gateway (`pollgate/client`; docs/CLIENT.md).
 * Written by hand: the client is one plain ES5 file. `require('pollgate/client')` and the default
 * (or named `Pollgate`) export of `import ... from 'pollgate/client'` are the same constructor.
 */
declare class Pollgate {
  /** Throws when no transport can reach `options.url` from this page, or there is neither `token` nor `getToken`. */
  constructor(options: Pollgate.Options);

  /** The connection state; the `state` event tells each change. */
  readonly state: Pollgate.State;
  /** The transport in use (or being tried); `shared` in a tab that follows another tab's connection (`share`). */
  readonly transport: Pollgate.TransportName | 'shared';
  /** The last cursor received (opaque), kept per tab: pass it as `cursor` to resume elsewhere. */
  readonly cursor: string | null;
  /** The streams received. */
  readonly streams: readonly string[];

  on<E extends keyof Pollgate.Events>(event: E, listener: Pollgate.Events[E]): this;
  /** Removes one listener, or every listener of the event when none is given. */
  off<E extends keyof Pollgate.Events>(event: E, listener?: Pollgate.Events[E]): this;
  /** Queues `data` (any JSON value) for `stream`; returns its id (an idempotency key), or null when it cannot be sent at all (`cb` says why). */
  send(stream: string, data: unknown, cb?: (err: Pollgate.ClientError | null, result?: Pollgate.SendResult) => void): string | null;
  subscribe(streams: string | readonly string[]): this;
  unsubscribe(streams: string | readonly string[]): this;
  /** A new token: a live WebSocket takes it in-band, keeping its subscriptions; other transports use it from the next request. */
  setToken(token: string): this;
  /** Who reads `stream` now, on every gateway node (GET /presence; the token must read the stream). */
  presence(stream: string, cb: (err: Pollgate.ClientError | null, result?: Pollgate.PresenceResult) => void): void;
  /** Messages waiting to be sent, oldest first. */
  pending(): Pollgate.OutgoingMessage[];
  /** Starts, when `autoConnect` was false. */
  connect(): this;
  /** Stops for good; unsent messages stay in this tab's storage. */
  close(): void;

  /** Full-jitter backoff: a random delay in [0, min(cap, base * 2^attempt)) ms. */
  static backoff(attempt: number, base: number, cap: number, random?: () => number): number;
  /** The transports by name, for adding one (docs/CLIENT.md, "Adding a transport"). */
  static readonly transports: Record<string, Pollgate.Transport>;
  static readonly version: string;
}

declare namespace Pollgate {
  type State = 'connecting' | 'online' | 'reconnecting' | 'offline' | 'closed';
  type TransportName = 'websocket' | 'sse' | 'xhr' | 'xdr' | 'jsonp';

  /** docs/CLIENT.md, "Options": every field but `token`/`getToken` has a default. */
  interface Options {
    /** The gateway's base URL; '' (default) is this page's origin. */
    url?: string;
    streams?: readonly string[];
    /** A client token (or API key); one of `token` and `getToken` is required. */
    token?: string;
    /** Called for the first token when `token` is missing, after every 401, and before a JWT expires. */
    getToken?: (cb: (err: Error | null, token?: string) => void) => void;
    /** Best first; default ['websocket', 'sse', 'polling']. */
    transports?: ReadonlyArray<TransportName | 'polling'>;
    /** 'auto' (default), or the one transport to use (never falling back). */
    transport?: 'auto' | TransportName;
    /** Where to start: a cursor from an earlier client (default: the one kept for this tab, page and streams). */
    cursor?: string;
    /** Where a client without a cursor starts; default 'now'. */
    since?: 'now' | 'earliest';
    /** One connection for the tabs of this browser with the same gateway and streams; default false. */
    share?: boolean;
    /** ms; default 10000. */
    connectTimeout?: number;
    /** ms; default 120000; 0: never. */
    upgradeInterval?: number;
    /** Seconds; default 25. */
    pollTimeout?: number;
    /** Seconds; default 15. */
    timeoutMargin?: number;
    limit?: number;
    /** ms; default 15000. */
    sendTimeout?: number;
    /** ms; default 500. */
    backoffBase?: number;
    /** ms; default 30000. */
    backoffCap?: number;
    /** Default 3. */
    sendRetries?: number;
    /** Prefix of the client's keys in localStorage and sessionStorage; default 'pollgate:' + url. */
    storageKey?: string;
    /** Default true. */
    autoConnect?: boolean;
  }

  interface Message {
    stream: string;
    seq: number;
    id: string;
    /** ms since the epoch, when the gateway stored it. */
    ts: number;
    data: unknown;
  }

  interface Gap {
    stream: string;
    from: number;
    to: number;
  }

  interface OutgoingMessage {
    id: string;
    stream: string;
    data: unknown;
  }

  interface PresenceResult {
    stream: string;
    /** Each present subject with its open connections (WebSockets, event streams, long-poll sessions). */
    subjects: { sub: string; connections: number }[];
    count: number;
  }

  interface SendResult {
    stream: string;
    seq: number;
    id: string;
    duplicate?: boolean;
  }

  /** An Error with the gateway's (or the client's) code: `unauthorized`, `forbidden`, `network`, `timeout`, `closed`, ... */
  interface ClientError extends Error {
    code: string;
    /** The HTTP status, 0 when there was none (a network error). */
    status: number;
    /** Seconds, from Retry-After. */
    retryAfter?: number;
  }

  interface Events {
    message: (message: Message) => void;
    state: (state: State, previous: State) => void;
    transport: (transport: TransportName | 'shared', previous: TransportName | 'shared') => void;
    gap: (gap: Gap) => void;
    reset: (reset: { stream: string }) => void;
    auth_error: (error: ClientError) => void;
    error: (error: ClientError) => void;
    sent: (result: SendResult, message: OutgoingMessage) => void;
    send_error: (error: ClientError, message: OutgoingMessage) => void;
  }

  /** docs/CLIENT.md, "Adding a transport". */
  interface Transport {
    isUsable(url: string): boolean;
    request?(req: { url: string; path: string; params: Record<string, unknown>; body: unknown; token: string | null; timeoutMs: number }, done: (err: ClientError | null, json?: unknown) => void): () => void;
    open?(client: { url: string; o: Options; token: string | null; streams: readonly string[]; from<T extends object>(params: T): T }, sink: { batch(json: unknown): void; fail(err: ClientError): void }): { close(): void };
  }
}

export = Pollgate;
