/**
 * Socket.IO 4 as the bench's peer: the polling transport only (Engine.IO v4), each client joining
 * the rooms named in its CONNECT packet's auth (`{streams: [...]}`), and the way a backend
 * publishes to Socket.IO: POST /send {stream, data} with `authorization: Bearer <API key>` does
 * `io.to(stream).emit('message', {stream, data})`. With REDIS_URL set, rooms go through
 * @socket.io/redis-adapter (pub/sub on that Redis: every emit is one PUBLISH, fire and forget).
 * GET /stats and /healthz as bench/peers/peer-http.ts; PORT, HOST and POLLGATE_API_KEYS from the environment.
 */
import { createServer } from 'node:http';
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';
import { answerJson, countHeldPolls, exitOnTerm, listenAddress, readJson, serveAdmin } from './peer-http.js';

const apiKey = process.env.POLLGATE_API_KEYS ?? '';
const redisUrl = process.env.REDIS_URL ?? '';

const server = createServer((req, res) => {
  if (serveAdmin(req, res, heldPolls)) return;
  if (req.method === 'POST' && req.url === '/send') return void send(req, res);
  answerJson(res, 404, { error: 'not found' });
});

// Socket.IO's defaults otherwise, as a deployment would run it: a ping every 25 s
// and 20 s to answer it (PEER_PING_INTERVAL_MS, PEER_PING_TIMEOUT_MS: shorter, to check the driver answers).
const pingInterval = Number(process.env.PEER_PING_INTERVAL_MS ?? 25_000);
const pingTimeout = Number(process.env.PEER_PING_TIMEOUT_MS ?? 20_000);
const io = new Server(server, { transports: ['polling'], serveClient: false, pingInterval, pingTimeout });
const heldPolls = countHeldPolls(server, (req) => req.method === 'GET' && (req.url ?? '').startsWith('/socket.io/') && (req.url ?? '').includes('sid='));

let redis: Redis[] = [];
if (redisUrl) {
  const pub = new Redis(redisUrl);
  const sub = pub.duplicate();
  redis = [pub, sub];
  io.adapter(createAdapter(pub, sub, { key: 'bench-socketio' }));
}

io.on('connection', (socket) => {
  const streams = (socket.handshake.auth as { streams?: unknown }).streams;
  if (Array.isArray(streams) && streams.every((s) => typeof s === 'string')) void socket.join(streams as string[]);
});

async function send(req: Parameters<typeof serveAdmin>[0], res: Parameters<typeof serveAdmin>[1]): Promise<void> {
  if (req.headers.authorization !== `Bearer ${apiKey}`) return answerJson(res, 401, { error: 'unauthorized' });
  let body: { stream?: unknown; data?: unknown };
  try {
    body = (await readJson(req)) as typeof body;
  } catch {
    return answerJson(res, 400, { error: 'malformed JSON' });
  }
  if (typeof body.stream !== 'string' || body.data === undefined) return answerJson(res, 400, { error: 'stream and data are required' });
  io.to(body.stream).emit('message', { stream: body.stream, data: body.data });
  answerJson(res, 200, { ok: true });
}

const { port, host } = listenAddress();
server.listen(port, host);
exitOnTerm(server);
process.once('exit', () => redis.forEach((r) => r.disconnect()));
