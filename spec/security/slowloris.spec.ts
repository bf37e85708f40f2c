/**
 * Slow clients: headers trickled byte by byte are cut at server.headersTimeoutMs, a body trickled
 * to /send is cut at limits.bodyTimeoutMs, and neither timer touches a poll that is legitimately
 * parked for longer than both.
 */
import { connect, type Socket } from 'node:net';
import { expect } from 'chai';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { poll, sendOk, uniqueStream } from '../support/http.js';
import { waitFor } from '../support/wait.js';

const HEADERS_TIMEOUT = 2000;
const BODY_TIMEOUT = 1000;

interface Trickle {
  /** Resolves when the server closes the connection: ms since the first byte, and what it said. */
  closed: Promise<{ ms: number; reply: string }>;
  socket: Socket;
}

/** Writes `head` at once, then one byte of `rest` every `everyMs` until the server closes the socket. */
function trickle(port: number, head: string, rest: string, everyMs: number): Trickle {
  const socket = connect(port, '127.0.0.1');
  const started = Date.now();
  let reply = '';
  let i = 0;
  let timer: NodeJS.Timeout | undefined;
  socket.on('data', (c: Buffer) => (reply += c.toString()));
  socket.on('error', () => undefined);
  socket.once('connect', () => {
    socket.write(head);
    timer = setInterval(() => {
      if (i < rest.length && socket.writable) socket.write(rest[i++]!);
    }, everyMs);
  });
  const closed = new Promise<{ ms: number; reply: string }>((resolve) =>
    socket.once('close', () => {
      clearInterval(timer);
      resolve({ ms: Date.now() - started, reply });
    }),
  );
  return { closed, socket };
}

describe('slow clients (slowloris)', function () {
  this.timeout(15_000);
  let gw: TestGateway;
  const sockets: Socket[] = [];

  before(async () => {
    gw = await startGateway({
      server: { keepAliveTimeoutMs: 1000, headersTimeoutMs: HEADERS_TIMEOUT, requestTimeoutMs: 11_000, connectionsCheckingIntervalMs: 200 },
      poll: { defaultTimeoutSeconds: 5, maxTimeoutSeconds: 5 },
      limits: { bodyTimeoutMs: BODY_TIMEOUT },
    });
  });
  after(async () => {
    sockets.forEach((s) => s.destroy());
    await gw.shutdown();
  });

  it('cuts a request whose headers trickle in one byte at a time at server.headersTimeoutMs', async function () {
    const t = trickle(gw.port, 'GET /poll?streams=room:1 HTTP/1.1\r\nHost: x\r\n', 'X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 250);
    sockets.push(t.socket);
    const { ms, reply } = await t.closed;
    expect(ms).to.be.at.least(HEADERS_TIMEOUT - 100);
    // headersTimeout plus the connections-checking interval, with room for a loaded CI machine.
    expect(ms).to.be.below(HEADERS_TIMEOUT + 2000);
    expect(reply === '' || reply.startsWith('HTTP/1.1 408'), reply).to.equal(true);
  });

  it('cuts a /send body that trickles in at limits.bodyTimeoutMs with 408 request_timeout and closes the connection', async function () {
    const body = JSON.stringify({ stream: 'room:slow', data: 'x'.repeat(40) });
    const head = `POST /send HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${gw.apiKey}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
    const t = trickle(gw.port, head, body, 100);
    sockets.push(t.socket);
    const { ms, reply } = await t.closed;
    expect(reply).to.match(/^HTTP\/1\.1 408 /);
    expect(reply).to.match(/connection: close/i);
    expect(reply).to.include('"code":"request_timeout"');
    expect(ms).to.be.at.least(BODY_TIMEOUT - 50);
    expect(ms).to.be.below(BODY_TIMEOUT + 2000);
  });

  it('still answers a poll parked for longer than the headers and body timeouts', async function () {
    const stream = uniqueStream();
    const start = await poll(gw.url, gw.apiKey, { streams: stream, timeout: 0 });
    const started = Date.now();
    const pending = poll(gw.url, gw.apiKey, { streams: stream, cursor: start.cursor, timeout: 5 });
    await waitFor(() => gw.longPolls.size === 1, 'the poll to park');
    // Time itself is the condition here: the poll must outlive headersTimeout plus a check.
    await new Promise((r) => setTimeout(r, HEADERS_TIMEOUT + 500));
    await sendOk(gw.url, gw.apiKey, { stream, data: 'late' });
    const got = await pending;
    expect(Date.now() - started).to.be.above(HEADERS_TIMEOUT + 400);
    expect(got.messages.map((m) => m.data)).to.deep.equal(['late']);
  });
});
