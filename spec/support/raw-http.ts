/**
 * Low-level HTTP for the security specs: requests from a chosen loopback source address (so one
 * machine can play many client IPs), each on its own connection, that can be aborted; and bytes
 * written as they are, for what Node's own client would refuse to send.
 */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface RawRequest {
  /** Resolves with the answer; rejects when the connection fails or is aborted. */
  response: Promise<RawResponse>;
  /** Destroys the connection (the server sees the client go away). */
  abort(): void;
}

export interface RawOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** A 127.x.y.z source address; the server sees it as the client IP. */
  localAddress?: string;
}

export function rawRequest(url: string, path: string, options: RawOptions = {}): RawRequest {
  const target = new URL(path, url);
  const req = httpRequest({
    host: target.hostname,
    port: target.port,
    path: `${target.pathname}${target.search}`,
    method: options.method ?? 'GET',
    headers: options.headers,
    localAddress: options.localAddress,
    agent: false,
  });
  const response = new Promise<RawResponse>((resolve, reject) => {
    req.once('error', reject);
    req.once('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('error', reject);
      res.once('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
  });
  // An aborted request rejects; callers that abort do not care about the answer.
  response.catch(() => undefined);
  req.end(options.body);
  return { response, abort: () => req.destroy() };
}

/** A GET /poll with a bearer credential from a source address. */
export function rawPoll(url: string, credential: string, query: Record<string, string | number>, localAddress?: string): RawRequest {
  const q = new URLSearchParams(Object.entries(query).map(([k, v]) => [k, String(v)]));
  return rawRequest(url, `/poll?${q}`, { headers: { authorization: `Bearer ${credential}` }, localAddress });
}

export interface RawAnswer {
  status: number;
  head: string;
  body: string;
}

/**
 * Writes `bytes` as they are on a fresh connection; resolves with the answer once the server
 * closes the connection (ask for `Connection: close`, or send what the server refuses).
 */
export function rawExchange(port: number, bytes: string): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (text += d));
    // The server may close while a long head is still being written.
    socket.on('error', (err: NodeJS.ErrnoException) => (err.code === 'EPIPE' || err.code === 'ECONNRESET' ? undefined : reject(err)));
    socket.once('close', () => {
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (!m) return reject(new Error(`no HTTP answer: ${JSON.stringify(text.slice(0, 200))}`));
      // A head the server cut short has no blank line: all of it is head.
      const at = text.indexOf('\r\n\r\n');
      resolve(at < 0 ? { status: Number(m[1]), head: text, body: '' } : { status: Number(m[1]), head: text.slice(0, at), body: text.slice(at + 4) });
    });
    socket.write(bytes);
  });
}
