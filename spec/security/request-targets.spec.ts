/**
 * Odd request targets (issue 23, finding 4): absolute-form is served as the path it names (RFC 9112
 * 3.2.2: a server must accept it); asterisk-form and absolute URLs that do not parse get a 400
 * JSON error over HTTP and a 400 refusal on upgrade: never a 5xx, never an error-level log line.
 */
import { expect } from 'chai';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { rawExchange } from '../support/raw-http.js';

/** Writes `head` (a request line and headers) on a fresh connection that asks to be closed. */
function exchange(port: number, head: string): Promise<{ status: number; body: string }> {
  return rawExchange(port, `${head}\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
}

const UPGRADE = 'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==';

describe('odd request targets', () => {
  let gw: TestGateway;
  const errors: string[] = [];

  before(async () => {
    gw = await startGateway();
    // An error-level line is what a 500 leaves behind; none may appear.
    const original = gw.log.error.bind(gw.log);
    gw.log.error = ((...args: unknown[]) => {
      errors.push(JSON.stringify(args).slice(0, 200));
      return (original as (...a: unknown[]) => void)(...args);
    }) as typeof gw.log.error;
  });

  after(async () => {
    await gw.shutdown();
  });

  for (const path of ['/poll', '/send', '/sse', '/ws', '/healthz', '/stats', '/pollgate.js', '/nowhere']) {
    it(`answers a malformed absolute-form target and an asterisk-form one with a 400 JSON error (${path})`, async () => {
      for (const head of [`GET http://[${path} HTTP/1.1`, `GET http://127.0.0.1:99999${path} HTTP/1.1`, 'OPTIONS * HTTP/1.1']) {
        const r = await exchange(gw.port, head);
        expect(r.status, head).to.equal(400);
        expect(JSON.parse(r.body).error.code, head).to.equal('bad_request');
      }
      expect(errors).to.deep.equal([]);
    });
  }

  it('serves an absolute-form target as the path it names', async () => {
    const r = await exchange(gw.port, `GET http://127.0.0.1:${gw.port}/healthz HTTP/1.1`);
    expect(r.status).to.equal(200);
    expect(JSON.parse(r.body)).to.deep.equal({ status: 'ok' });
  });

  it('refuses an upgrade with a malformed target with 400, and an unknown path with 404', async () => {
    for (const target of ['http://[/ws', 'http://127.0.0.1:99999/ws', '*']) {
      const r = await exchange(gw.port, `GET ${target} HTTP/1.1\r\n${UPGRADE}`);
      expect(r.status, target).to.equal(400);
      expect(JSON.parse(r.body).error.code).to.equal('bad_request');
    }
    const r = await exchange(gw.port, `GET /elsewhere HTTP/1.1\r\n${UPGRADE}`);
    expect(r.status).to.equal(404);
    expect(errors).to.deep.equal([]);
  });
});
