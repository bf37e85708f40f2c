/**
 * Server hooks: the application's say on who may read and write a stream, and what it is told.
 * One rule for every transport: Subscriptions asks authorize() for reads (poll, SSE, WebSocket
 * subscribe, history, presence), Messages for writes (/send, WebSocket send); a refusal is the
 * usual ForbiddenError. Two sources, never both: an embedder's async callbacks (createGateway
 * options, lib/index.ts) or, for the standalone server, an HTTP hook (config `hooks.url`) that
 * the gateway POSTs JSON to, signed with `hooks.secret`. Allow decisions are cached for
 * `hooks.allowCacheSeconds`; refusals never are. API keys are trusted backends: hooks are not
 * asked about them.
 */
import { createHmac } from 'node:crypto';
import type { Principal } from './auth.js';
import { ForbiddenError, HookUnavailableError } from './errors.js';
import { configuredUrlForLogs, type Logger } from './log.js';
import { RecentMap } from './recent-map.js';

export type HookAction = 'read' | 'write';
/** Where a request came from: a long poll, an event stream, a WebSocket, or another HTTP endpoint (/send, /history, /presence). */
export type HookTransport = 'poll' | 'sse' | 'ws' | 'http';

export interface AuthorizeRequest {
  subject: string;
  stream: string;
  action: HookAction;
  transport: HookTransport;
}

/** A message just stored, as onPublish sees it. */
export interface PublishedMessage {
  stream: string;
  seq: number;
  id: string;
  /** The sender's subject (`apikey:<n>` for API keys). */
  subject: string;
  data: unknown;
  transport: HookTransport;
}

/** A client connection opening or ending (a WebSocket, an event stream, a long-poll session). */
export interface ConnectionEvent {
  subject: string;
  transport: 'poll' | 'sse' | 'ws';
  streams: readonly string[];
  /** disconnect only: why it ended (`closed`, `disconnected`, `expired`, `shutdown`, `idle`). */
  reason?: string;
}

/** The embedder's callbacks: options of createGateway() beside the config keys. Each is optional. */
export interface GatewayHooks {
  /** Resolves true to allow; false (or a rejection) refuses with 403 forbidden. Called for client tokens only. */
  authorize?(request: AuthorizeRequest): boolean | Promise<boolean>;
  /** After a message is stored (not for duplicates); its errors are logged, never seen by the sender. */
  onPublish?(message: PublishedMessage): void | Promise<void>;
  onConnect?(event: ConnectionEvent): void;
  onDisconnect?(event: ConnectionEvent): void;
}

export interface HttpHookConfig {
  /** Empty: no HTTP hook. */
  url: string;
  /** Signs each request (HOOK_SIGNATURE_HEADER) so the application can tell it from anyone else's; empty: unsigned. */
  secret: string;
  timeoutMs: number;
  /** true: a hook that times out or fails allows (not cached); false (default): 503 hook_unavailable. */
  failOpen: boolean;
  allowCacheSeconds: number;
}

const ALLOW_CACHE_MAX = 50_000;

/** The header that signs an HTTP hook request (hooks.secret): `t=<unix seconds>,v1=<hex HMAC-SHA256>`. */
export const HOOK_SIGNATURE_HEADER = 'x-pollgate-signature';

/**
 * The signature of a hook request's body at `unixSeconds`: HMAC-SHA256 under hooks.secret of
 * `<unixSeconds>.<body>`, in hex. The time is signed with the body so that the application can
 * refuse an old request replayed at it (docs/SECURITY.md, "Operator endpoints, hooks").
 */
export function hookSignature(secret: string, unixSeconds: number, body: string): string {
  return `t=${unixSeconds},v1=${createHmac('sha256', secret).update(`${unixSeconds}.${body}`).digest('hex')}`;
}

/** Where the HTTP hook is asked, as fetch takes it. */
interface HookTarget {
  url: string;
  /** Basic credentials from the configured URL's user-info. */
  authorization?: string;
}

/**
 * The hook's URL without user-info, which fetch refuses (and its error would repeat in the log):
 * `https://user:password@app/hook` is asked with those as Basic credentials instead.
 */
export function hookTarget(url: string): HookTarget {
  const parsed = new URL(url);
  if (!parsed.username && !parsed.password) return { url };
  const credentials = `${decodedOrAsIs(parsed.username)}:${decodedOrAsIs(parsed.password)}`;
  parsed.username = '';
  parsed.password = '';
  return { url: parsed.href, authorization: `Basic ${Buffer.from(credentials).toString('base64')}` };
}

/** A percent-encoded part of a URL, decoded; as written when its encoding is broken (`%zz`). */
function decodedOrAsIs(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

/** The HTTP hook's decision: POST {type:"authorize",...}; a 200 with {"allow":true} allows, any other answer refuses. */
async function askHttpHook(config: HttpHookConfig, target: HookTarget, request: AuthorizeRequest): Promise<boolean> {
  const body = JSON.stringify({ type: 'authorize', ...request });
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (target.authorization) headers.authorization = target.authorization;
  if (config.secret) headers[HOOK_SIGNATURE_HEADER] = hookSignature(config.secret, Math.floor(Date.now() / 1000), body);
  const res = await fetch(target.url, { method: 'POST', headers, body, signal: AbortSignal.timeout(config.timeoutMs) });
  if (res.status !== 200) {
    await res.body?.cancel();
    return false;
  }
  const reply = (await res.json().catch(() => undefined)) as { allow?: unknown } | undefined;
  return reply?.allow === true;
}

export class Hooks {
  /** `${action}\0${transport}\0${subject}\0${stream}` -> when the allow expires (ms). */
  private readonly allowed = new RecentMap<string, number>(ALLOW_CACHE_MAX);
  /** Questions on their way, so a burst of polls asks once. */
  private readonly asking = new Map<string, Promise<boolean>>();
  private readonly decide?: (request: AuthorizeRequest) => boolean | Promise<boolean>;
  /** Hook calls made (cache misses), for tests and the PERFORMANCE.md figures. */
  calls = 0;

  constructor(private readonly callbacks: GatewayHooks, private readonly http: HttpHookConfig, private readonly log: Logger) {
    if (callbacks.authorize) this.decide = callbacks.authorize.bind(callbacks);
    else if (http.url) {
      const target = hookTarget(http.url);
      // Worked out once: it is logged on every failed call.
      const urlForLogs = configuredUrlForLogs(http.url);
      this.decide = (request) => this.askHttp(target, urlForLogs, request);
      if (!http.secret) {
        log.warn({ url: urlForLogs }, 'the HTTP hook\'s requests are unsigned: the application cannot tell them from anyone else\'s; set hooks.secret (POLLGATE_HOOKS_SECRET) and check x-pollgate-signature');
      }
    }
  }

  /** Whether anyone is asked at all: without a hook, authorisation stays the token's patterns. */
  get active(): boolean {
    return this.decide !== undefined;
  }

  /**
   * Rejects with ForbiddenError for the first stream the hook refuses, HookUnavailableError (503)
   * when an HTTP hook failed and fails closed. Undefined (nothing to await) for API keys, without a
   * hook, and when every allow is remembered.
   */
  assertAllowed(principal: Principal, streams: readonly string[], action: HookAction, transport: HookTransport): Promise<void> | undefined {
    if (!this.decide || principal.kind === 'server') return undefined;
    const verdicts = streams.map((stream) => this.allows({ subject: principal.subject, stream, action, transport }));
    // Every allow remembered: nothing to await (a polling client's usual case: 0.6 us for 3 streams, 1.4 us when awaited; docs/PERFORMANCE.md).
    if (verdicts.every((v) => v === true)) return undefined;
    return Promise.all(verdicts).then((settled) => {
      const refused = settled.indexOf(false);
      if (refused >= 0) throw new ForbiddenError(`not allowed to ${action === 'read' ? 'read' : 'send to'} stream "${streams[refused]}"`);
    });
  }

  /** onPublish for each stored message; never throws, never delays the sender. */
  published(message: () => PublishedMessage[]): void {
    const onPublish = this.callbacks.onPublish;
    if (!onPublish) return;
    for (const m of message()) {
      try {
        Promise.resolve(onPublish.call(this.callbacks, m)).catch((err: unknown) => this.log.warn({ err }, 'onPublish hook failed'));
      } catch (err) {
        this.log.warn({ err }, 'onPublish hook failed');
      }
    }
  }

  connected(event: ConnectionEvent): void {
    this.notify('onConnect', event);
  }

  disconnected(event: ConnectionEvent): void {
    this.notify('onDisconnect', event);
  }

  private notify(name: 'onConnect' | 'onDisconnect', event: ConnectionEvent): void {
    const callback = this.callbacks[name];
    if (!callback) return;
    try {
      callback.call(this.callbacks, event);
    } catch (err) {
      this.log.warn({ err }, `${name} hook failed`);
    }
  }

  private allows(request: AuthorizeRequest): Promise<boolean> | boolean {
    const key = `${request.action}\0${request.transport}\0${request.subject}\0${request.stream}`;
    const until = this.allowed.get(key);
    if (until !== undefined && Date.now() < until) return true;
    let pending = this.asking.get(key);
    if (!pending) {
      this.calls++;
      pending = this.ask(request).then(({ allow, cache }) => {
        if (allow && cache && this.http.allowCacheSeconds > 0) this.allowed.set(key, Date.now() + this.http.allowCacheSeconds * 1000);
        return allow;
      });
      const settled = () => this.asking.delete(key);
      pending.then(settled, settled);
      this.asking.set(key, pending);
    }
    return pending;
  }

  /** An embedder's rejection is a refusal; an HTTP hook's failure is decided by failOpen (askHttp). */
  private async ask(request: AuthorizeRequest): Promise<{ allow: boolean; cache: boolean }> {
    try {
      return { allow: (await this.decide!(request)) === true, cache: true };
    } catch (err) {
      if (err instanceof HookUnavailableError) {
        // A timeout or an unreachable HTTP hook is no decision: fail closed (503, the client
        // retries) unless told to fail open, and then the allow is not remembered.
        if (this.http.failOpen) return { allow: true, cache: false };
        throw err;
      }
      this.log.warn({ err }, 'authorize hook threw: refused');
      return { allow: false, cache: true };
    }
  }

  private async askHttp(target: HookTarget, urlForLogs: string, request: AuthorizeRequest): Promise<boolean> {
    try {
      return await askHttpHook(this.http, target, request);
    } catch (err) {
      this.log.warn({ err: (err as Error).message, url: urlForLogs }, 'authorize hook failed');
      throw new HookUnavailableError();
    }
  }
}
