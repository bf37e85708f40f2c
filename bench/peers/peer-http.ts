/**
 * What every peer server (bench/peers/*-server.ts) answers besides its own transport, in the
 * shape bench/gateway.ts reads from pollgate: GET /healthz, and GET /stats with CPU time, memory,
 * event-loop delay (p99/max since start or the last ?reset=1) and `parkedPolls`, the requests of
 * the transport's long-poll path in flight (held polls; a short request counts while it runs).
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';

const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();
const ms = (ns: number) => Math.round(ns / 1e4) / 100;

/** Counts requests for which `isPoll` holds from arrival until their response closes. */
export function countHeldPolls(server: Server, isPoll: (req: IncomingMessage) => boolean): () => number {
  let held = 0;
  // Prepended: the transport's own listener (installed by attach) answers; this one only counts.
  server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
    if (!isPoll(req)) return;
    held++;
    res.once('close', () => held--);
  });
  return () => held;
}

export function answerJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Answers /healthz and /stats; false for any other request. */
export function serveAdmin(req: IncomingMessage, res: ServerResponse, parked: () => number): boolean {
  const url = new URL(req.url ?? '/', 'http://peer');
  if (url.pathname === '/healthz') {
    answerJson(res, 200, { ok: true });
    return true;
  }
  if (url.pathname !== '/stats') return false;
  const gc = (globalThis as { gc?: () => void }).gc;
  if (url.searchParams.get('gc') === '1' && gc) gc();
  const cpu = process.cpuUsage();
  const mem = process.memoryUsage();
  answerJson(res, 200, {
    pid: process.pid,
    parkedPolls: parked(),
    cpuMicros: { user: cpu.user, system: cpu.system },
    memory: { rss: mem.rss, heapUsed: mem.heapUsed, heapTotal: mem.heapTotal, external: mem.external, arrayBuffers: mem.arrayBuffers },
    eventLoopDelayMs: { p50: ms(loopDelay.percentile(50)), p99: ms(loopDelay.percentile(99)), max: ms(loopDelay.max), samples: loopDelay.count },
  });
  if (url.searchParams.get('reset') === '1') loopDelay.reset();
  return true;
}

/** The whole request body as JSON; rejects on malformed JSON. */
export function readJson(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', reject);
    req.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch (err) {
        reject(err as Error);
      }
    });
  });
}

/** The port and host bench/gateway.ts gives every server it starts. */
export function listenAddress(): { port: number; host: string } {
  return { port: Number(process.env.PORT ?? 0), host: process.env.HOST ?? '127.0.0.1' };
}

/** Exits on SIGTERM (bench/gateway.ts stops servers with it) once open connections are dropped. */
export function exitOnTerm(server: Server): void {
  process.once('SIGTERM', () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  });
}
