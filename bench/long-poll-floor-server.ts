/**
 * The long-poll floor: the least a Node process can do for the targeted scenario, so pollgate's
 * CPU per delivered message can be read against it, not against two bare requests. A bare
 * node:http server speaking just the part of pollgate's HTTP surface the targeted clients use:
 *
 *   GET /poll?streams=S&cursor=N   answers at once with S's messages after seq N (the cursor is
 *                                  the last seq, unsigned), else parks until a send or `timeout`
 *   POST /send {"stream","data"}   stores the message under the next seq, answers the parked
 *                                  poll of that stream, then answers {"results":[...]}
 *   GET /stats, GET /healthz       what bench/gateway.ts reads (parked polls, CPU time, memory)
 *
 * What it leaves out is everything pollgate does for its users: authentication, cursor signing,
 * validation and limits, epochs and gap reports, retention, ids that are unique across
 * processes, the no-cache and security headers, the request log and the connection caps. It
 * keeps one parked poll per stream (the targeted scenario has one client per stream).
 * PORT and HOST from the environment.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';

interface FloorStream {
  /** Stored JSON of each message; the i-th has seq i + 1 (the bench's streams stay small). */
  messages: string[];
  parked?: { res: ServerResponse; timer: NodeJS.Timeout };
}

const streams = new Map<string, FloorStream>();
let parkedPolls = 0;
let nextId = 0;
const loopDelay = monitorEventLoopDelay();
loopDelay.enable();

function streamOf(name: string): FloorStream {
  let s = streams.get(name);
  if (!s) streams.set(name, (s = { messages: [] }));
  return s;
}

function json(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function answerPoll(res: ServerResponse, messages: string[], cursor: number): void {
  json(res, 200, `{"messages":[${messages.join(',')}],"cursor":"${cursor}"}`);
}

function unpark(s: FloorStream): ServerResponse | undefined {
  const p = s.parked;
  if (!p) return undefined;
  clearTimeout(p.timer);
  s.parked = undefined;
  parkedPolls--;
  return p.res;
}

function poll(url: URL, res: ServerResponse): void {
  const name = url.searchParams.get('streams');
  if (!name) return json(res, 400, '{"error":{"code":"bad_request","message":"streams is required"}}');
  const after = Number(url.searchParams.get('cursor') ?? 0);
  const timeoutMs = Number(url.searchParams.get('timeout') ?? 25) * 1000;
  const s = streamOf(name);
  if (s.messages.length > after) return answerPoll(res, s.messages.slice(after), s.messages.length);
  const earlier = unpark(s);
  if (earlier) answerPoll(earlier, [], after);
  const timer = setTimeout(() => {
    if (unpark(s)) answerPoll(res, [], after);
  }, timeoutMs);
  s.parked = { res, timer };
  parkedPolls++;
  res.once('close', () => {
    if (s.parked?.res === res) unpark(s);
  });
}

function send(req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    let body: { stream?: unknown; data?: unknown };
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof body;
    } catch {
      return json(res, 400, '{"error":{"code":"bad_json","message":"body is not JSON"}}');
    }
    if (typeof body.stream !== 'string' || body.data === undefined) {
      return json(res, 400, '{"error":{"code":"bad_request","message":"stream and data are required"}}');
    }
    const s = streamOf(body.stream);
    const seq = s.messages.length + 1;
    const id = `m${nextId++}`;
    s.messages.push(`{"stream":${JSON.stringify(body.stream)},"seq":${seq},"id":"${id}","data":${JSON.stringify(body.data)}}`);
    const waiting = unpark(s);
    if (waiting) answerPoll(waiting, s.messages.slice(seq - 1), seq);
    json(res, 200, `{"results":[{"stream":${JSON.stringify(body.stream)},"seq":${seq},"id":"${id}"}]}`);
  });
}

function stats(url: URL, res: ServerResponse): void {
  if (url.searchParams.get('gc')) (globalThis as { gc?: () => void }).gc?.();
  const m = process.memoryUsage();
  const ms = (ns: number) => Math.round(ns / 1e4) / 100;
  json(res, 200, JSON.stringify({
    pid: process.pid, parkedPolls, waiters: parkedPolls, subscribedStreams: 0, requests: 0,
    cpuMicros: process.cpuUsage(),
    memory: { rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers },
    eventLoopDelayMs: { p50: ms(loopDelay.percentile(50)), p99: ms(loopDelay.percentile(99)), max: ms(loopDelay.max), samples: loopDelay.count },
  }));
  if (url.searchParams.get('reset')) loopDelay.reset();
}

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://floor');
  if (req.method === 'POST' && url.pathname === '/send') return send(req, res);
  if (req.method === 'GET' && url.pathname === '/poll') return poll(url, res);
  if (url.pathname === '/stats') return stats(url, res);
  if (url.pathname === '/healthz') return json(res, 200, '{"ok":true}');
  json(res, 404, '{"error":{"code":"not_found","message":"no such route"}}');
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT), process.env.HOST ?? '127.0.0.1');
process.on('SIGTERM', () => {
  for (const s of streams.values()) {
    const res = unpark(s);
    if (res) answerPoll(res, [], s.messages.length);
  }
  server.close(() => process.exit(0));
  server.closeIdleConnections();
});
