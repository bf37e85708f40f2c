/**
 * The Node floor, measured in the same run: a bare node:http server (FLOOR=http) or a one-
 * middleware Koa app (FLOOR=koa) answering a small JSON body, the 39 / 44 µs
 * references. GET /cpu answers this process's CPU time in µs. The bare server also holds
 * GET /park requests until POST /release answers them all in one loop (GET /parked counts
 * them): the fastest a Node process can answer a broadcast. PORT from the environment.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import Koa from 'koa';

const body = JSON.stringify({ results: [{ stream: 'floor', seq: 1, id: 'abcdefghijklmnopqrstu' }] });
const cpu = () => {
  const c = process.cpuUsage();
  return String(c.user + c.system);
};

/** Held GET /park requests, answered all at once by POST /release: the floor of a broadcast. */
const parked: ServerResponse[] = [];
const answer = (res: ServerResponse) => {
  res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
};

function bare(req: IncomingMessage, res: ServerResponse): void {
  if (req.url === '/cpu') {
    res.end(cpu());
    return;
  }
  if (req.url === '/park') {
    parked.push(res);
    return;
  }
  if (req.url === '/memory') {
    // Live memory only: the bench starts this server with --expose-gc.
    (globalThis as { gc?: () => void }).gc?.();
    const m = process.memoryUsage();
    res.end(req.headers['x-heap'] ? String(m.heapUsed) : String(m.rss));
    return;
  }
  if (req.url === '/parked') {
    res.end(String(parked.length));
    return;
  }
  if (req.url === '/release') {
    const all = parked.splice(0);
    answer(res);
    for (const r of all) answer(r);
    return;
  }
  req.resume();
  req.on('end', () => answer(res));
}

function koa() {
  const app = new Koa();
  app.use(async (ctx) => {
    if (ctx.path === '/cpu') {
      ctx.body = cpu();
      return;
    }
    await new Promise((resolve) => {
      ctx.req.on('end', resolve);
      ctx.req.resume();
    });
    ctx.type = 'application/json; charset=utf-8';
    ctx.body = body;
  });
  return app.callback();
}

const server = createServer(process.env.FLOOR === 'koa' ? koa() : bare);
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT), '127.0.0.1', () => process.stdout.write('listening\n'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
