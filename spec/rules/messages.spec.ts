/**
 * What a message may be (Messages.parse and publish's write permission, lib/messages.ts), checked
 * the same way on both ways in: a bad message gets the same error code and the same reason on
 * POST /send and on a WebSocket `send` frame, and nothing is stored.
 */
import { expect } from 'chai';
import type { WsClient } from '../support/clients.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { uniqueStream } from '../support/http.js';
import { Closers, frameError, httpError, httpSend, openWs, storedData, wsSend, type Seen } from './transports.js';

const DATA_BYTES = 1024;

/** The reason without the name of the message (`message.data ...` on /send, `send.data ...` on a frame). */
function reason(message: string): string {
  return message.replace(/^(message|send)\b/, '<message>');
}

interface BadMessage {
  what: string;
  /** The message, for a stream the token may write unless the case says otherwise. */
  message(stream: string): Record<string, unknown>;
  status: number;
  code: string;
}

const BAD: BadMessage[] = [
  { what: 'data over limits.dataBytes', message: (stream) => ({ stream, data: 'x'.repeat(DATA_BYTES) }), status: 413, code: 'payload_too_large' },
  { what: 'an id outside the id grammar', message: (stream) => ({ stream, data: 1, id: 'not an id' }), status: 400, code: 'bad_request' },
  { what: 'an id longer than 64 characters', message: (stream) => ({ stream, data: 1, id: 'i'.repeat(65) }), status: 400, code: 'bad_request' },
  { what: 'no data', message: (stream) => ({ stream }), status: 400, code: 'bad_request' },
  { what: 'a stream name outside the grammar', message: (stream) => ({ stream: `${stream} x`, data: 1 }), status: 400, code: 'bad_request' },
  { what: 'a stream name that is not a string', message: () => ({ stream: ['room:1'], data: 1 }), status: 400, code: 'bad_request' },
  { what: 'a stream the token may not write', message: (stream) => ({ stream: stream.replace(/^room:/, 'secret:'), data: 1 }), status: 403, code: 'forbidden' },
];

describe('what a message may be, on every way in (rules: lib/messages.ts parse, publish)', function () {
  const closers = new Closers();
  let gw: TestGateway;
  let token: string;
  let ws: WsClient;

  beforeEach(async () => {
    gw = closers.add(await startGateway({ limits: { dataBytes: DATA_BYTES } }), (g) => g.shutdown());
    token = await gw.token({ sub: 'writer', streams: [], pub: ['room:*'] });
    ws = await openWs(gw.url, token, closers);
  });
  afterEach(() => closers.closeAll());

  for (const bad of BAD) {
    it(`refuses ${bad.what} with ${bad.code} on POST /send and on a WebSocket send frame, storing nothing`, async function () {
      const stream = uniqueStream();
      const message = bad.message(stream);
      const http: Seen = await httpError(await httpSend(gw.url, token, message));
      const frame: Seen = frameError(await wsSend(ws, message));
      expect(http.status).to.equal(bad.status);
      expect(http.code).to.equal(bad.code);
      expect(frame.code).to.equal(http.code);
      expect(reason(frame.message)).to.equal(reason(http.message));
      for (const s of [stream, stream.replace(/^room:/, 'secret:')]) expect(await storedData(gw.url, gw.apiKey, s)).to.deep.equal([]);
    });
  }

  it('accepts data of exactly limits.dataBytes on both, and numbers the two messages 1 and 2', async function () {
    const stream = uniqueStream();
    const data = 'x'.repeat(DATA_BYTES - 2); // JSON adds the two quotes
    const res = await httpSend(gw.url, token, { stream, data, id: 'by-http' });
    expect(res.status).to.equal(200);
    expect((await res.json()).results[0]).to.include({ seq: 1, id: 'by-http' });
    expect(await wsSend(ws, { stream, data, id: 'by-ws' })).to.include({ type: 'ack', seq: 2, id: 'by-ws' });
    expect(await storedData(gw.url, gw.apiKey, stream)).to.deep.equal([data, data]);
  });
});
