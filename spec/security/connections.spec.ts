/**
 * WebSocket and SSE connections under the same caps and per-IP rate as parked polls: over a cap an
 * upgrade is refused with an HTTP 429/503 (never a 101) and an event stream with a JSON 429/503;
 * every way a connection ends gives its slot back.
 */
import { randomBytes } from 'node:crypto';
import { request, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { expect } from 'chai';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { WsClient } from '../support/clients.js';
import { rawPoll, type RawRequest } from '../support/raw-http.js';
import { waitFor } from '../support/wait.js';

interface Refusal {
  status: number;
  retryAfter?: string;
  body: string;
}

/** A WebSocket handshake from a source address: resolves with the refusal; rejects if upgraded. */
function handshakeFrom(url: string, localAddress: string, credential?: string): Promise<Refusal> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/ws${credential ? `?token=${credential}` : ''}`, {
      localAddress,
      agent: false,
      headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': randomBytes(16).toString('base64') },
    });
    req.once('upgrade', (res, socket) => {
      socket.destroy();
      reject(new Error(`the server upgraded (${res.statusCode})`));
    });
    req.once('response', (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.once('end', () => resolve({ status: res.statusCode!, retryAfter: res.headers['retry-after'] as string | undefined, body }));
    });
    req.once('error', reject);
    req.end();
  });
}

/** GET /sse from a source address; resolves once the status is known, the stream left open. */
function sseFrom(url: string, localAddress: string, credential: string): Promise<{ res: IncomingMessage; close(): void }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/sse?streams=room:1&token=${credential}`, { localAddress, agent: false });
    req.once('response', (res) => resolve({ res, close: () => req.destroy() }));
    req.once('error', reject);
    req.end();
  });
}

describe('WebSocket and SSE connection caps and rate limits', function () {
  let gw: TestGateway;
  const cleanups: (() => unknown)[] = [];

  beforeEach(async () => {
    gw = await startGateway({ limits: { parkedPerSubject: 2, parkedPerIp: 3, parkedPerProcess: 5, capRetryAfterSeconds: 4 }, rateLimits: { pollsPerIpPerSecond: 0 } });
  });
  afterEach(async () => {
    await Promise.all(cleanups.splice(0).map((c) => c()));
    await gw.shutdown();
  });

  async function ws(from: string, token = gw.apiKey): Promise<WsClient> {
    const c = await WsClient.open(gw.url, { token, localAddress: from });
    cleanups.push(() => c.close());
    return c;
  }
  async function sse(from: string, token = gw.apiKey) {
    const s = await sseFrom(gw.url, from, token);
    cleanups.push(() => s.close());
    return s;
  }
  function park(from: string): RawRequest {
    const r = rawPoll(gw.url, gw.apiKey, { streams: 'room:1', timeout: 30 }, from);
    cleanups.push(() => r.abort());
    return r;
  }

  it('counts WebSockets, SSE streams and parked polls together per IP: then an upgrade gets 429 without 101, and a stream a JSON 429', async function () {
    const first = await ws('127.0.0.2');
    expect((await sse('127.0.0.2')).res.statusCode).to.equal(200);
    park('127.0.0.2');
    await waitFor(() => gw.caps.size === 3, 'three connections counted');

    const refused = await handshakeFrom(gw.url, '127.0.0.2', gw.apiKey);
    expect(refused.status).to.equal(429);
    expect(refused.retryAfter).to.equal('4');
    expect(JSON.parse(refused.body).error.code).to.equal('rate_limited');
    const stream = await sse('127.0.0.2');
    expect(stream.res.statusCode).to.equal(429);
    expect(stream.res.headers['retry-after']).to.equal('4');

    await first.close();
    await waitFor(() => gw.caps.size === 2, 'the closed socket released');
    await ws('127.0.0.2');
    expect(gw.caps.size).to.equal(3);
  });

  it('caps one client-token subject across addresses and transports', async function () {
    const token = await gw.token({ sub: 'dave', streams: ['room:*'] });
    await ws('127.0.0.3', token);
    expect((await sse('127.0.0.4', token)).res.statusCode).to.equal(200);
    expect((await handshakeFrom(gw.url, '127.0.0.5', token)).status).to.equal(429);
    expect((await sse('127.0.0.6', token)).res.statusCode).to.equal(429);
  });

  it('answers an upgrade 503 overloaded once the process is full', async function () {
    for (let i = 1; i <= 5; i++) await ws(`127.0.2.${i}`);
    const refused = await handshakeFrom(gw.url, '127.0.2.9', gw.apiKey);
    expect(refused.status).to.equal(503);
    expect(refused.retryAfter).to.equal('4');
    expect(JSON.parse(refused.body).error.code).to.equal('overloaded');
  });

  it('gives the slot back when the client resets mid-upgrade, when ws refuses the handshake, and when an SSE client leaves', async function () {
    const key = randomBytes(16).toString('base64');
    const upgrade = (secKey: string) =>
      `GET /ws?token=${gw.apiKey} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${secKey}\r\n\r\n`;
    for (const raw of [upgrade(key), upgrade('not-a-valid-key')]) {
      const socket = connect(gw.port, '127.0.0.1');
      socket.on('error', () => undefined);
      // The refused handshake is answered 400 and ended by the server; the client then lets go too.
      socket.once('end', () => socket.destroy());
      socket.resume();
      const closed = new Promise((r) => socket.once('close', r));
      socket.once('connect', () => socket.write(raw, () => (raw.includes(key) ? socket.resetAndDestroy() : undefined)));
      await closed;
    }
    const s = await sse('127.0.0.7');
    await waitFor(() => gw.caps.size === 1, 'the SSE stream counted');
    s.close();
    await waitFor(() => gw.caps.size === 0 && gw.sse.size === 0 && gw.websockets.size === 0, `every slot released (caps ${gw.caps.size}, sse ${gw.sse.size}, ws ${gw.websockets.size})`);
  });

  it('rate-limits new WebSocket upgrades and SSE streams per IP with rateLimits.pollsPerIpPerSecond', async function () {
    await gw.shutdown();
    gw = await startGateway({ rateLimits: { pollsPerIpPerSecond: 2 } });
    await ws('127.0.0.8');
    expect((await sse('127.0.0.8')).res.statusCode).to.equal(200);
    const refused = await handshakeFrom(gw.url, '127.0.0.8', gw.apiKey);
    expect(refused.status).to.equal(429);
    expect(refused.retryAfter).to.equal('1');
    expect((await sse('127.0.0.8')).res.statusCode).to.equal(429);
    await ws('127.0.0.9');
  });
});
