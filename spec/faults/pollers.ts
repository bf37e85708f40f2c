/**
 * Pollers of the fault suite: a client that follows streams through one transport, reconnects
 * to any live node when its connection fails (or the nemesis cuts it), and records everything it
 * is told. A transport only has to turn "follow these streams from this cursor on this node"
 * into batches: the long-poll one is here, the SSE and WebSocket ones in stream-transports.ts.
 */
import { setMaxListeners } from 'node:events';
import type { PollEvent, PollerHistory } from './checker.js';
import { ClientLoop } from './client-loop.js';

export interface WireBatch {
  messages: { stream: string; seq: number; id: string }[];
  cursor: string;
  gaps?: { stream: string; from: number; to: number }[];
  resets?: string[];
}

export interface FollowRequest {
  /** Base URL of the node, e.g. http://127.0.0.1:1234 */
  url: string;
  apiKey: string;
  streams: string[];
  /** undefined: start at the oldest retained message of every stream. */
  cursor?: string;
  signal: AbortSignal;
}

export interface Transport {
  readonly name: string;
  /**
   * Follows the streams and calls onBatch for every batch, in order, until the signal aborts or
   * the connection fails; then rejects. onBatch must be called before the next request is made
   * with the batch's cursor.
   */
  follow(req: FollowRequest, onBatch: (batch: WireBatch) => void): Promise<never>;
}

/** GET /poll in a loop, 5 s holds. */
export const longPoll: Transport = {
  name: 'long-poll',
  async follow(req, onBatch) {
    let cursor = req.cursor;
    for (;;) {
      const q = new URLSearchParams({ streams: req.streams.join(','), timeout: '5', limit: '1000' });
      if (cursor) q.set('cursor', cursor);
      else q.set('since', 'earliest');
      const res = await fetch(`${req.url}/poll?${q}`, { headers: { authorization: `Bearer ${req.apiKey}` }, signal: req.signal });
      const text = await res.text();
      if (res.status !== 200) throw new Error(`poll answered ${res.status}: ${text.slice(0, 200)}`);
      const batch = JSON.parse(text) as WireBatch;
      onBatch(batch);
      cursor = batch.cursor;
    }
  },
};

const BACKOFF_BASE_MS = 50;
const BACKOFF_MAX_MS = 2000;

export interface PollerOptions {
  name: string;
  transport: Transport;
  streams: string[];
  apiKey: string;
  /** The nodes that may be up; one is picked at random on every (re)connect. */
  nodes: () => string[];
}

/** One client: follows its streams until stop(), recording every message, gap and reset. */
export class Poller extends ClientLoop {
  readonly history: PollerHistory;
  reconnects = 0;
  private cursor?: string;
  /** Failed connections in a row since the last batch: the backoff grows with it. */
  private failures = 0;

  constructor(private readonly options: PollerOptions) {
    super();
    this.history = { name: options.name, streams: new Map(options.streams.map((s) => [s, [] as PollEvent[]])) };
  }

  /** Ids received so far on a stream. */
  received(stream: string): Set<string> {
    const ids = new Set<string>();
    for (const e of this.history.streams.get(stream) ?? []) if (e.type === 'msg') ids.add(e.id);
    return ids;
  }

  private record(batch: WireBatch): void {
    const at = Date.now();
    for (const s of batch.resets ?? []) this.history.streams.get(s)?.push({ type: 'reset', at });
    for (const g of batch.gaps ?? []) this.history.streams.get(g.stream)?.push({ type: 'gap', from: g.from, to: g.to, at });
    for (const m of batch.messages) this.history.streams.get(m.stream)?.push({ type: 'msg', seq: m.seq, id: m.id, at });
    this.cursor = batch.cursor;
    this.failures = 0;
  }

  protected async run(): Promise<void> {
    while (!this.stopped) {
      const nodes = this.options.nodes();
      const url = nodes[Math.floor(Math.random() * nodes.length)]!;
      this.current = new AbortController();
      // A long-poll connection makes thousands of fetches on this one signal before it is
      // dropped, each adding an abort listener that lives as long as the signal.
      setMaxListeners(0, this.current.signal);
      try {
        await this.options.transport.follow(
          { url, apiKey: this.options.apiKey, streams: this.options.streams, cursor: this.cursor, signal: this.current.signal },
          (b) => this.record(b),
        );
      } catch {
        if (this.stopped) return;
        this.reconnects++;
        // Full-jitter exponential backoff (50 ms doubling, at most 2 s): a dead node or a paused
        // Redis is not hammered, and the first retry after a cut is still quick.
        const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** this.failures++);
        await new Promise((r) => setTimeout(r, Math.random() * ceiling));
      }
    }
  }
}
