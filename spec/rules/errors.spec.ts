/**
 * How errors are shown (lib/errors.ts toWire), and one error through every renderer that starts
 * from it: an HTTP answer and a JSONP answer (lib/http/errors.ts), an XDomainRequest answer
 * (transport=xdr), a WebSocket handshake refusal (transports/websocket.ts refuse), an error frame
 * and a close code (transports/ws-connection.ts). The same code and message everywhere.
 */
import { expect } from 'chai';
import Koa from 'koa';
import { retentionFor } from '../../lib/config.js';
import {
  BadRequestError, GatewayError, MethodNotAllowedError, OverloadedError, RateLimitedError, ShuttingDownError, StoreUnavailableError, toWire,
  UnauthorizedError, type WireError,
} from '../../lib/errors.js';
import { MemoryStore } from '../../lib/store/memory-store.js';
import type { Store } from '../../lib/store/store.js';
import { handshake, WsClient } from '../support/clients.js';
import { startGateway, testConfig, type TestGateway } from '../support/gateway.js';
import { errorClasses, everyGatewayError } from './error-classes.js';
import { Closers, frameError, httpError, httpSend, openWs, request, wsSend, type Seen } from './transports.js';

/** What each exported class becomes; a class exported without a row here fails the first test. */
const EXPECTED: Record<string, Pick<WireError, 'status' | 'code' | 'closeCode'>> = {
  BadRequestError: { status: 400, code: 'bad_request', closeCode: 4400 },
  InvalidCursorError: { status: 400, code: 'invalid_cursor', closeCode: 4400 },
  UnauthorizedError: { status: 401, code: 'unauthorized', closeCode: 4401 },
  ForbiddenError: { status: 403, code: 'forbidden', closeCode: 4403 },
  NotFoundError: { status: 404, code: 'not_found', closeCode: 4404 },
  MethodNotAllowedError: { status: 405, code: 'method_not_allowed', closeCode: 4405 },
  RequestTimeoutError: { status: 408, code: 'request_timeout', closeCode: 4408 },
  PayloadTooLargeError: { status: 413, code: 'payload_too_large', closeCode: 4413 },
  UnsupportedMediaTypeError: { status: 415, code: 'unsupported_media_type', closeCode: 4415 },
  HeadersTooLargeError: { status: 431, code: 'headers_too_large', closeCode: 4431 },
  LimitExceededError: { status: 400, code: 'limit_exceeded', closeCode: 4400 },
  RateLimitedError: { status: 429, code: 'rate_limited', closeCode: 4429 },
  OverloadedError: { status: 503, code: 'overloaded', closeCode: 1013 },
  StoreUnavailableError: { status: 503, code: 'store_unavailable', closeCode: 1013 },
  HookUnavailableError: { status: 503, code: 'hook_unavailable', closeCode: 1013 },
  ShuttingDownError: { status: 503, code: 'shutting_down', closeCode: 1001 },
};

const INTERNAL = { status: 500, code: 'internal', message: 'internal error', closeCode: 1011, unexpected: true };

/** The error Koa's ctx.throw() raises (an http-errors error), caught. */
function koaThrown(status: number, message: string): unknown {
  try {
    new Koa().context.throw(status, message);
  } catch (err) {
    return err;
  }
  throw new Error('ctx.throw did not throw');
}

describe('toWire', function () {
  it('knows every exported GatewayError subclass: its status, code and close code, with its message shown', function () {
    expect(errorClasses().map(([name]) => name).sort()).to.deep.equal(Object.keys(EXPECTED).sort());
    for (const [name, err] of everyGatewayError()) {
      const wire = toWire(err);
      expect({ status: wire.status, code: wire.code, closeCode: wire.closeCode }, name).to.deep.equal(EXPECTED[name]);
      expect(wire, name).to.include({ message: err.message, unexpected: false });
      expect(wire.message, name).to.be.a('string').that.is.not.empty;
    }
  });

  it('sends retryAfter in whole seconds, rounded up, only for errors that carry one', function () {
    expect(toWire(new RateLimitedError('slow down', 0.2)).retryAfter).to.equal(1);
    expect(toWire(new OverloadedError('full', 3)).retryAfter).to.equal(3);
    expect(toWire(new StoreUnavailableError()).retryAfter).to.equal(1);
    expect(toWire(new ShuttingDownError()).retryAfter).to.equal(1);
    expect(toWire(new BadRequestError('no')).retryAfter).to.equal(undefined);
  });

  it('sends allow for a 405 only', function () {
    expect(toWire(new MethodNotAllowedError('use GET', ['GET', 'HEAD'])).allow).to.deep.equal(['GET', 'HEAD']);
    expect(toWire(new BadRequestError('no')).allow).to.equal(undefined);
  });

  it('turns a plain Error, a thrown non-Error and an unexposed GatewayError into a 500 internal that shows none of their text', function () {
    class Hidden extends GatewayError {
      override readonly expose = false;
    }
    for (const thrown of [new Error('redis://:hunter2@db'), new TypeError('hunter2 is not a function'), 'hunter2', undefined, null, { status: 500, message: 'hunter2' }, new Hidden('hunter2')]) {
      const wire = toWire(thrown);
      expect(wire, String(thrown)).to.deep.equal(INTERNAL);
      expect(JSON.stringify(wire)).not.to.include('hunter2');
    }
  });

  it('turns Koa\'s own client errors (ctx.throw, http-errors) into their status with our code for it and a generic message; its server errors into internal', function () {
    expect(toWire(koaThrown(400, 'hunter2 in the URL'))).to.deep.equal({ status: 400, code: 'bad_request', message: 'malformed request', closeCode: 4400, unexpected: false });
    expect(toWire(koaThrown(404, 'hunter2'))).to.deep.equal({ status: 404, code: 'not_found', message: 'not found', closeCode: 4404, unexpected: false });
    expect(toWire(koaThrown(413, 'hunter2'))).to.deep.equal({ status: 413, code: 'payload_too_large', message: 'payload too large', closeCode: 4413, unexpected: false });
    // A client-error status none of ours has: still the request's fault, and still a code clients know.
    expect(toWire(koaThrown(418, 'hunter2'))).to.deep.equal({ status: 418, code: 'bad_request', message: "i'm a teapot", closeCode: 4418, unexpected: false });
    // Ours of these statuses carry Allow and Retry-After, which a foreign one cannot.
    expect(toWire(koaThrown(405, 'hunter2')).code).to.equal('bad_request');
    expect(toWire(koaThrown(429, 'hunter2')).code).to.equal('bad_request');
    expect(toWire(koaThrown(500, 'hunter2'))).to.deep.equal(INTERNAL);
  });
});

describe('one error through every renderer', function () {
  const closers = new Closers();
  let gw: TestGateway;
  afterEach(() => closers.closeAll());

  /** The error inside `/**\/cb(...);`, with the answer's status. */
  async function jsonpError(res: Response): Promise<Seen> {
    expect(res.headers.get('content-type')).to.match(/^application\/javascript/);
    const m = /^\/\*\*\/cb\((.*)\);$/s.exec(await res.text());
    if (!m) throw new Error('not a JSONP answer');
    const { error } = JSON.parse(m[1]!);
    return { status: res.status, code: error.code, message: error.message };
  }

  /** POSTs `body` as XDomainRequest does (text/plain, the token inside, `transport=xdr`). */
  function xdr(path: string, body: unknown): Promise<Response> {
    return fetch(`${gw.url}${path}?transport=xdr`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: JSON.stringify(body) });
  }

  describe('401 unauthorized (a credential that is neither an API key nor a token)', function () {
    const BAD = 'not-a-credential';
    beforeEach(async () => {
      gw = closers.add(await startGateway({ jsonp: { enabled: true } }), (g) => g.shutdown());
    });

    it('is the same code and message as an HTTP 401, JSONP 200, XDR 200, handshake refusal 401, and a 4401 close whose reason is the message', async function () {
      const http = await httpError(await fetch(`${gw.url}/poll?streams=room:1&timeout=0`, { headers: { authorization: `Bearer ${BAD}` } }));
      const wire = toWire(new UnauthorizedError(http.message));
      expect(http).to.deep.equal({ status: wire.status, code: 'unauthorized', message: http.message });
      const same = { code: http.code, message: http.message };

      expect(await jsonpError(await fetch(`${gw.url}/poll?streams=room:1&timeout=0&token=${BAD}&callback=cb`))).to.deep.equal({ status: 200, ...same });
      expect(await httpError(await xdr('/send', { stream: 'room:1', data: 1, token: BAD }))).to.deep.equal({ status: 200, ...same });
      const refused = await handshake(gw.url, `/ws?token=${BAD}`);
      expect({ status: refused.status, ...JSON.parse(refused.body).error }).to.deep.equal({ status: 401, ...same });

      const ws = closers.add(await WsClient.open(gw.url, {}), (c) => c.close());
      ws.send({ type: 'auth', token: BAD });
      expect(await ws.closed).to.deep.equal({ code: wire.closeCode, reason: http.message });
      expect(wire.closeCode).to.equal(4401);
    });
  });

  describe('403 forbidden (a stream the token may not read)', function () {
    beforeEach(async () => {
      gw = closers.add(await startGateway({ jsonp: { enabled: true } }), (g) => g.shutdown());
    });

    it('is the same code and message as an HTTP 403, JSONP 200, XDR 200 and a WebSocket error frame echoing its ref', async function () {
      const token = await gw.token({ sub: 'reader', streams: ['room:*'] });
      const http = await httpError(await fetch(`${gw.url}/poll?streams=secret:1&timeout=0`, { headers: { authorization: `Bearer ${token}` } }));
      expect(http).to.deep.equal({ status: 403, code: 'forbidden', message: 'not allowed to read stream "secret:1"' });
      const same = { code: http.code, message: http.message };

      expect(await jsonpError(await fetch(`${gw.url}/poll?streams=secret:1&timeout=0&token=${token}&callback=cb`))).to.deep.equal({ status: 200, ...same });
      expect(await httpError(await xdr('/poll', { streams: 'secret:1', timeout: 0, token }))).to.deep.equal({ status: 200, ...same });
      const ws = await openWs(gw.url, token, closers);
      const reply = await request(ws, 'subscribe', { streams: ['secret:1'] });
      expect(frameError(reply)).to.deep.equal(same);
      expect(reply.ref).to.be.a('string').that.is.not.empty;
    });
  });

  describe('500 internal (the store throws an Error of its own)', function () {
    beforeEach(async () => {
      const config = testConfig();
      const store = new MemoryStore((stream) => retentionFor(config, stream));
      (store as Store).append = async () => {
        throw new Error('redis://:hunter2@db refused');
      };
      gw = closers.add(await startGateway({}, { store }), (g) => g.shutdown());
    });

    it('is a generic internal error in an HTTP 500, an XDR 200 and a WebSocket error frame, never the Error\'s text', async function () {
      const message = { stream: 'room:1', data: 1 };
      const http = await httpError(await httpSend(gw.url, gw.apiKey, message));
      expect(http).to.deep.equal({ status: 500, code: INTERNAL.code, message: INTERNAL.message });
      expect(await httpError(await xdr('/send', { ...message, token: gw.apiKey }))).to.deep.equal({ ...http, status: 200 });
      const ws = await openWs(gw.url, gw.apiKey, closers);
      expect(frameError(await wsSend(ws, message))).to.deep.equal({ code: INTERNAL.code, message: INTERNAL.message });
      // The socket stays open: an error frame is not a close.
      expect((await request(ws, 'ping', {})).type).to.equal('pong');
    });
  });
});
