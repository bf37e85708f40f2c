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

export class MemoryStorage {
  readonly items = new Map<string, string>();
  getItem(k: string): string | null {
    return this.items.get(k) ?? null;
  }
  setItem(k: string, v: string): void {
    this.items.set(k, String(v));
  }
  removeItem(k: string): void {
    this.items.delete(k);
  }
}

export interface ClientMessage {
  stream: string;
  seq: number;
  id: string;
  ts: number;
  data: unknown;
}

/** The Pollgate constructor as loaded in a fresh context sharing `net` and `storage`. */
export function loadPollgate(net: Net, storage = new MemoryStorage()): any {
  const source = readFileSync(CLIENT_PATH, 'utf8');
  const sandbox: Record<string, unknown> = {
    XMLHttpRequest: shimFor(net),
    window: { localStorage: storage, navigator: { onLine: true } },
    setTimeout,
    clearTimeout,
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
