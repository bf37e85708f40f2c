/**
 * Runs static/pollgate.js in Node (a vm context) over a small XMLHttpRequest shim built on fetch,
 * so client logic can be tested against a real gateway. The shim's `net` switch simulates a dead
 * network and lets a test rewrite answers.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';

export const CLIENT_PATH = fileURLToPath(new URL('../../../static/pollgate.js', import.meta.url));

export interface Net {
  /** When true every request fails like a refused connection (status 0). */
  down: boolean;
  /** Rewrites a response body before the client sees it. */
  mutate?: (url: string, text: string) => string;
  requests: { method: string; url: string; body: string | null }[];
}

export function makeNet(): Net {
  return { down: false, requests: [] };
}

function shimFor(net: Net) {
  return class ShimXHR {
    readyState = 0;
    status = 0;
    responseText = '';
    withCredentials = false;
    onreadystatechange: null | (() => void) = null;
    private method = 'GET';
    private url = '';
    private headers: Record<string, string> = {};
    private received?: Headers;
    private readonly ctrl = new AbortController();

    open(method: string, url: string): void {
      this.method = method;
      this.url = url;
      this.readyState = 1;
    }

    setRequestHeader(name: string, value: string): void {
      this.headers[name] = value;
    }

    getResponseHeader(name: string): string | null {
      return this.received?.get(name) ?? null;
    }

    send(body: string | null): void {
      net.requests.push({ method: this.method, url: this.url, body });
      if (net.down) {
        setTimeout(() => this.finish(0, ''), 5);
        return;
      }
      fetch(this.url, { method: this.method, headers: this.headers, body: body ?? undefined, signal: this.ctrl.signal }).then(
        async (res) => {
          const text = await res.text();
          this.received = res.headers;
          this.finish(res.status, net.mutate ? net.mutate(this.url, text) : text);
        },
        () => this.finish(0, ''),
      );
    }

    abort(): void {
      this.ctrl.abort();
      this.finish(0, '');
    }

    private finish(status: number, text: string): void {
      if (this.readyState === 4) return;
      this.readyState = 4;
      this.status = status;
      this.responseText = text;
      this.onreadystatechange?.();
    }
  };
}

export interface StorageEventLike {
  key: string;
  newValue: string | null;
}

/**
 * A Storage in memory. Shared by several loadPollgate() pages as their localStorage, it fires
 * `storage` events at each of them after every change, as browsers do (to the writer as well,
 * as IE does); `drop` can lose some.
 */
export class MemoryStorage {
  readonly items = new Map<string, string>();
  /** `storage` listeners, by page. */
  readonly pages: ((e: StorageEventLike) => void)[][] = [];
  /** When it returns true for an event and a page (its index in `pages`), that page never gets the event. */
  drop?: (e: StorageEventLike, page: number) => boolean;

  getItem(k: string): string | null {
    return this.items.get(k) ?? null;
  }
  setItem(k: string, v: string): void {
    this.items.set(k, String(v));
    this.fire({ key: k, newValue: String(v) });
  }
  removeItem(k: string): void {
    this.items.delete(k);
    this.fire({ key: k, newValue: null });
  }

  private fire(e: StorageEventLike): void {
    this.pages.forEach((listeners, page) => {
      if (this.drop?.(e, page)) return;
      setTimeout(() => {
        for (const fn of [...listeners]) fn(e);
      }, 0);
    });
  }
}

export interface ClientMessage {
  stream: string;
  seq: number;
  id: string;
  ts: number;
  data: unknown;
}

/**
 * The Pollgate constructor as loaded in a fresh context (a page) sharing `net` and `storage` (the
 * browser's localStorage); `session` is the tab's sessionStorage (the same one for a reload).
 */
export function loadPollgate(net: Net, storage = new MemoryStorage(), session = new MemoryStorage()): any {
  const source = readFileSync(CLIENT_PATH, 'utf8');
  // Only `storage` events reach a page here; the client's other window listeners are never called.
  const listeners: ((e: StorageEventLike) => void)[] = [];
  storage.pages.push(listeners);
  const addEventListener = (type: string, fn: (e: StorageEventLike) => void) => type === 'storage' && listeners.push(fn);
  const removeEventListener = (type: string, fn: (e: StorageEventLike) => void) => type === 'storage' && listeners.includes(fn) && listeners.splice(listeners.indexOf(fn), 1);
  const sandbox: Record<string, unknown> = {
    XMLHttpRequest: shimFor(net),
    window: { localStorage: storage, sessionStorage: session, navigator: { onLine: true }, atob, addEventListener, removeEventListener },
    setTimeout,
    clearTimeout,
    setInterval,
    clearInterval,
    console,
  };
  vm.runInNewContext(source, sandbox, { filename: 'pollgate.js' });
  return sandbox.Pollgate;
}

/** Resolves once check() is truthy (checked every 20 ms); rejects after timeoutMs naming what. */
export async function until<T>(what: string, check: () => T, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
