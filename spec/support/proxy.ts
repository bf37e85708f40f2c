/**
 * A small HTTP proxy in front of a gateway that refuses, cuts or buffers one kind of traffic on
 * demand: WebSocket upgrades (`/ws`), event streams (`/sse`) or polls (`/poll`). The transport
 * tests put it between a real browser and the gateway, so the client meets a transport failing
 * the way a hostile proxy makes it fail, and no production code knows about tests.
 */
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { connect } from 'node:net';
import type { Duplex } from 'node:stream';

export type Kind = 'ws' | 'sse' | 'poll' | 'send';

function kindOf(url: string | undefined): Kind | null {
  const path = (url ?? '/').split('?')[0];
  return path === '/ws' ? 'ws' : path === '/sse' ? 'sse' : path === '/poll' ? 'poll' : path === '/send' ? 'send' : null;
}

export interface CuttingProxy {
  /** The proxy's origin, e.g. http://127.0.0.1:40123 (pages and the client use it as the gateway). */
  url: string;
  /** Requests (upgrades included) that reached the gateway, by kind. */
  passed: Record<Kind, number>;
  /** Requests answered 503 by the proxy, by kind. */
  refused: Record<Kind, number>;
  /** Bytes of answers passed on to the browser, by kind (buffered bytes count once passed). */
  delivered: Record<Kind, number>;
  /** Refuses new requests of these kinds with 503 and destroys the open ones. */
  refuse(...kinds: Kind[]): void;
  /** Stops passing data either way on the open connections of these kinds, keeping them open (a silently dead proxy). */
  freeze(...kinds: Kind[]): void;
  /** Holds back the bodies of these kinds' answers, open ones included, until each answer ends (a buffering proxy). */
  buffer(...kinds: Kind[]): void;
  /** Lets these kinds through again (and stops buffering them). */
  allow(...kinds: Kind[]): void;
  /** Closes the proxy and every connection through it. */
  close(): Promise<void>;
}

/** Starts a proxy to `target` (http://host:port) on 127.0.0.1 and a free port; `pages` (path -> HTML) it serves itself. */
export async function startProxy(target: string, pages: Record<string, () => string> = {}): Promise<CuttingProxy> {
  const { hostname, port } = new URL(target);
  const blocked = new Set<Kind>();
  const buffered = new Set<Kind>();
  const open = new Map<Kind, Set<Duplex>>([['ws', new Set()], ['sse', new Set()], ['poll', new Set()], ['send', new Set()]]);
  const all = new Set<Duplex>();
  const passed: Record<Kind, number> = { ws: 0, sse: 0, poll: 0, send: 0 };
  const refused: Record<Kind, number> = { ws: 0, sse: 0, poll: 0, send: 0 };
  const delivered: Record<Kind, number> = { ws: 0, sse: 0, poll: 0, send: 0 };

  /** Stops reading an upstream socket and what it is piped with, so nothing moves either way. */
  function frozen(socket: Duplex): void {
    const peer = peers.get(socket);
    if (peer) {
      socket.unpipe(peer);
      peer.unpipe(socket);
      peer.pause();
    }
    socket.pause();
  }
  const peers = new WeakMap<Duplex, Duplex>();

  /** Remembers an upstream socket under its kind until it closes. */
  function track(kind: Kind | null, socket: Duplex): void {
    all.add(socket);
    socket.once('close', () => all.delete(socket));
    if (!kind) return;
    open.get(kind)!.add(socket);
    socket.once('close', () => open.get(kind)!.delete(socket));
  }

  const server: Server = createServer((req, res) => {
    const page = pages[(req.url ?? '/').split('?')[0]!];
    if (page) {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' }).end(page());
      return;
    }
    const kind = kindOf(req.url);
    if (kind && blocked.has(kind)) {
      refused[kind]++;
      res.writeHead(503, { 'Content-Type': 'application/json', Connection: 'close' }).end('{"error":{"code":"refused","message":"refused by the test proxy"}}');
      return;
    }
    if (kind) passed[kind]++;
    const up = request({ host: hostname, port, method: req.method, path: req.url, headers: req.headers, agent: false }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      // Passed on as it comes unless this kind is buffered: then kept until the answer is complete.
      const held: Buffer[] = [];
      const pass = (chunk: Buffer) => {
        if (kind) delivered[kind] += chunk.length;
        return res.write(chunk);
      };
      upRes.on('data', (chunk: Buffer) => (kind && buffered.has(kind) ? held.push(chunk) : pass(chunk)));
      upRes.once('end', () => {
        pass(Buffer.concat(held));
        res.end();
      });
      // A cut upstream (refuse()) must cut the browser's response too, not leave it hanging.
      upRes.once('close', () => res.writableEnded || res.destroy());
    });
    up.once('socket', (s) => track(kind, s));
    up.on('error', () => res.destroy());
    res.once('close', () => up.destroy());
    req.pipe(up);
  });

  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    all.add(socket);
    socket.once('close', () => all.delete(socket));
    socket.on('error', () => socket.destroy());
    const kind = kindOf(req.url);
    if (kind && blocked.has(kind)) {
      refused[kind]++;
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    if (kind) passed[kind]++;
    const up = connect(Number(port), hostname, () => {
      let lines = `${req.method} ${req.url} HTTP/1.1\r\n`;
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
      up.write(`${lines}\r\n`);
      if (head.length) up.write(head);
      up.pipe(socket);
      socket.pipe(up);
    });
    track(kind, up);
    peers.set(up, socket);
    up.on('error', () => socket.destroy());
    up.once('close', () => socket.destroy());
    socket.once('close', () => up.destroy());
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    passed,
    refused,
    delivered,
    refuse(...kinds) {
      for (const k of kinds) {
        blocked.add(k);
        for (const s of open.get(k)!) s.destroy();
      }
    },
    freeze(...kinds) {
      for (const k of kinds) for (const s of open.get(k)!) frozen(s);
    },
    buffer(...kinds) {
      for (const k of kinds) buffered.add(k);
    },
    allow(...kinds) {
      for (const k of kinds) {
        blocked.delete(k);
        buffered.delete(k);
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of all) s.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
