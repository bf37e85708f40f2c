/**
 * Open connections for the shutdown-at-scale test: WebSocket and SSE clients that remember the last
 * cursor they were given and how their connection ended. Each is opened on its own socket and
 * closed by whoever ends it; close() is safe at any time.
 */
import { request, type Agent, type ClientRequest } from 'node:http';
import { WebSocket } from 'ws';

/** A WebSocket subscribed from the oldest message; `cursor` follows every messages/subscribed frame. */
export class LiveWs {
  cursor = '';
  /** `messages` frames received after the subscription was confirmed. */
  lateFrames = 0;
  readonly subscribed: Promise<void>;
  readonly closed: Promise<number>;
  private readonly ws: WebSocket;

  constructor(port: number, apiKey: string, stream: string) {
    this.ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { headers: { authorization: `Bearer ${apiKey}` } });
    this.ws.on('error', () => {}); // surfaced through `closed`
    this.closed = new Promise((resolve) => this.ws.once('close', (code) => resolve(code)));
    let confirmed = false;
    this.subscribed = new Promise((resolve, reject) => {
      this.ws.once('open', () => this.ws.send(JSON.stringify({ type: 'subscribe', streams: [stream], since: 'earliest' })));
      this.ws.on('message', (data) => {
        const frame = JSON.parse(data.toString()) as { type: string; cursor?: string };
        if (frame.type === 'messages' && confirmed) this.lateFrames++;
        if (frame.cursor) this.cursor = frame.cursor;
        if (frame.type === 'subscribed') {
          confirmed = true;
          resolve();
        }
      });
      void this.closed.then((code) => reject(new Error(`websocket closed (${code}) before subscribed`)));
    });
  }

  close(): void {
    this.ws.terminate();
  }
}

/** An SSE stream from the oldest message; `cursor` follows every event's id. */
export class LiveSse {
  cursor = '';
  events: string[] = [];
  readonly ready: Promise<void>;
  /** Resolves with 'end' when the server finished the response, 'aborted' when it was cut. */
  readonly ended: Promise<'end' | 'aborted'>;
  private readonly req: ClientRequest;

  constructor(port: number, apiKey: string, stream: string, agent: Agent) {
    this.req = request({ host: '127.0.0.1', port, agent, path: `/sse?streams=${stream}&since=earliest&token=${apiKey}` });
    let onReady!: () => void;
    this.ready = new Promise((resolve) => (onReady = resolve));
    this.ended = new Promise((resolve) => {
      this.req.on('response', (res) => {
        let buffer = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffer += chunk;
          const blocks = buffer.split('\n\n');
          buffer = blocks.pop()!;
          for (const block of blocks) {
            const id = /^id: (.*)$/m.exec(block)?.[1];
            if (id === undefined) continue;
            this.cursor = id;
            const type = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
            this.events.push(type);
            if (type === 'ready') onReady();
          }
        });
        res.once('end', () => resolve('end'));
        res.once('aborted', () => resolve('aborted'));
      });
      this.req.on('error', () => resolve('aborted'));
    });
    this.req.end();
  }

  close(): void {
    this.req.destroy();
  }
}
