/**
 * Senders of the fault suite: each sends one message at a time to a random stream through a
 * random node, and retries a message whose outcome is unknown (timeout, 503, cut connection)
 * with the same id until it is acknowledged. Every acknowledgement and every unknown outcome is
 * recorded for the checker.
 */
import { idOf, type Ack, type Indeterminate } from './checker.js';
import { ClientLoop } from './client-loop.js';

export interface SenderOptions {
  name: string;
  streams: string[];
  apiKey: string;
  nodes: () => string[];
  /** Pause between two messages (ms). */
  pauseMs: number;
  /** A request without an answer after this long is abandoned (indeterminate). */
  timeoutMs: number;
}

export class Sender extends ClientLoop {
  readonly acks: Ack[] = [];
  readonly indeterminate: Indeterminate[] = [];
  private n = 0;

  constructor(private readonly options: SenderOptions) {
    super();
  }

  /** Sends one message until acknowledged (or the sender stops); resolves with its ack. */
  async sendUntilAcked(stream: string, id: string, n: number): Promise<Ack | undefined> {
    for (let attempt = 0; !this.stopped || attempt === 0; attempt++) {
      const nodes = this.options.nodes();
      const url = nodes[Math.floor(Math.random() * nodes.length)]!;
      this.current = new AbortController();
      const timer = setTimeout(() => this.current?.abort(), this.options.timeoutMs);
      try {
        const res = await fetch(`${url}/send`, {
          method: 'POST',
          headers: { authorization: `Bearer ${this.options.apiKey}`, 'content-type': 'application/json' },
          body: JSON.stringify({ stream, id, data: { n } }),
          signal: this.current.signal,
        });
        const text = await res.text();
        if (res.status === 200) {
          const result = (JSON.parse(text) as { results: { seq: number }[] }).results[0]!;
          const ack: Ack = { stream, id, seq: result.seq, sender: this.options.name, n, at: Date.now() };
          this.acks.push(ack);
          return ack;
        }
        if (res.status !== 503) throw new Error(`send answered ${res.status}: ${text}`);
        if (!res.headers.get('retry-after')) throw new Error('503 without Retry-After');
      } catch (err) {
        if (!(err instanceof Error) || !/abort|fetch failed|terminated|other side closed/i.test(`${err.name} ${err.message}`)) throw err;
      } finally {
        clearTimeout(timer);
      }
      this.indeterminate.push({ stream, id });
      await new Promise((r) => setTimeout(r, 20 + Math.random() * 80));
    }
    return undefined;
  }

  protected async run(): Promise<void> {
    while (!this.stopped) {
      const stream = this.options.streams[Math.floor(Math.random() * this.options.streams.length)]!;
      const n = this.n++;
      await this.sendUntilAcked(stream, idOf(this.options.name, n), n);
      await new Promise((r) => setTimeout(r, this.options.pauseMs * (0.5 + Math.random())));
    }
  }
}
