/**
 * Requests Node's HTTP parser refuses before the pipeline sees them (the standalone server's
 * 'clientError' listener, lib/http/client-error.ts): each gets the gateway's JSON error with its
 * status, where Node's own answer had a status line and no body; an answer already on its way is
 * never broken into.
 */
import { maxHeaderSize } from 'node:http';
import { connect } from 'node:net';
import { expect } from 'chai';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { rawExchange as exchange } from '../support/raw-http.js';

describe("requests Node's parser refuses", function () {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway();
  });
  after(async () => {
    await gw.shutdown();
  });

  it('answers a request line and headers over the limit (a GET poll of many streams) with a 431 JSON error that says to POST', async () => {
    const streams = Array.from({ length: 2000 }, (_, i) => `room:stream-${i}`).join(',');
    expect(streams.length).to.be.above(maxHeaderSize);
    const r = await exchange(gw.port, `GET /poll?streams=${streams}&timeout=0 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    expect(r.status).to.equal(431);
    expect(r.head).to.match(/\r\ncontent-type: application\/json; charset=utf-8\r\n/i);
    expect(r.head).to.match(/\r\ncache-control: no-store(\r\n|$)/i);
    const { error } = JSON.parse(r.body) as { error: { code: string; message: string } };
    expect(error.code).to.equal('headers_too_large');
    expect(error.message).to.include(`over ${maxHeaderSize} bytes`).and.to.include('POST /poll with its parameters in a JSON body');
  });

  it('answers a malformed request with a 400 JSON error', async () => {
    for (const head of ['GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nNot a header\r\n\r\n', 'GET /healthz HTTP/9.9\r\n\r\n', 'NOT-A-METHOD /healthz HTTP/1.1\r\nHost: x\r\n\r\n']) {
      const r = await exchange(gw.port, head);
      expect(r.status, head).to.equal(400);
      expect(JSON.parse(r.body), head).to.deep.equal({ error: { code: 'bad_request', message: 'malformed request' } });
    }
  });

  it('answers a chunked body whose chunk extensions are over Node\'s cap with a 413 JSON error', async () => {
    const head = 'POST /send HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n';
    const r = await exchange(gw.port, `${head}2;ext=${'x'.repeat(20_000)}\r\n{}\r\n0\r\n\r\n`);
    expect(r.status).to.equal(413);
    expect(JSON.parse(r.body).error.code).to.equal('payload_too_large');
  });

  /** pollgate_errors_total by code, now. */
  async function errorCounts(): Promise<Record<string, number>> {
    const text = await (await fetch(`${gw.url}/metrics`, { headers: { authorization: `Bearer ${gw.apiKey}` } })).text();
    const counts: Record<string, number> = {};
    for (const m of text.matchAll(/^pollgate_errors_total\{[^}]*code="([a-z_]+)"[^}]*\} (\d+)/gm)) counts[m[1]!] = (counts[m[1]!] ?? 0) + Number(m[2]);
    return counts;
  }
  const added = (before: Record<string, number>, after: Record<string, number>) =>
    Object.fromEntries(Object.keys(after).filter((k) => after[k] !== (before[k] ?? 0)).map((k) => [k, after[k]! - (before[k] ?? 0)]));

  it('counts each refusal once by its code in pollgate_errors_total, also one refused while the pipeline read its body', async () => {
    let before = await errorCounts();
    await exchange(gw.port, 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nNot a header\r\n\r\n');
    await exchange(gw.port, `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Long: ${'x'.repeat(maxHeaderSize)}\r\n\r\n`);
    expect(added(before, await errorCounts())).to.deep.equal({ bad_request: 1, headers_too_large: 1 });
    // A send whose body the parser refuses: the route reading it refuses it too, and counts it.
    before = await errorCounts();
    const head = `POST /send HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${gw.apiKey}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`;
    await exchange(gw.port, `${head}2;ext=${'x'.repeat(20_000)}\r\n{}\r\n0\r\n\r\n`);
    const counted = added(before, await errorCounts());
    expect(Object.values(counted).reduce((a, b) => a + b, 0), JSON.stringify(counted)).to.equal(1);
  });

  it('writes nothing into an answer already on its way: garbage pipelined behind an event stream only closes it', async () => {
    const token = await gw.token({ sub: 'pipeliner', streams: ['room:*'] });
    const socket = connect(gw.port, '127.0.0.1');
    let text = '';
    socket.setEncoding('utf8');
    const headArrived = new Promise<void>((resolve) => {
      socket.on('data', (d: string) => {
        text += d;
        if (text.includes('\r\n\r\n')) resolve();
      });
    });
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => undefined);
    socket.write(`GET /sse?streams=room:pipelined&token=${token} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    await headArrived;
    expect(text).to.match(/^HTTP\/1\.1 200 /);
    socket.write('NOT-A-METHOD / HTTP/1.1\r\n\r\n');
    await closed;
    // One status line: the event stream's. No error answer was written into its body.
    expect(text.match(/HTTP\/1\.1 /g)).to.have.length(1);
  });

  it('answers headers not received within server.headersTimeoutMs with a 408 JSON error', async function () {
    const slow = await startGateway({ server: { keepAliveTimeoutMs: 1000, headersTimeoutMs: 1001, connectionsCheckingIntervalMs: 100 } });
    try {
      // Headers never finished: Node's connection check refuses the request once the time is up.
      const r = await exchange(slow.port, 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n');
      expect(r.status).to.equal(408);
      expect(JSON.parse(r.body).error.code).to.equal('request_timeout');
    } finally {
      await slow.shutdown();
    }
  });
});
