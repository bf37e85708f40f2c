import { connect } from 'node:net';
import { request as httpRequest } from 'node:http';
import { expect } from 'chai';
import request from 'supertest';
import { createLogger } from '../../lib/log.js';
import { MemoryStore } from '../../lib/store/memory-store.js';
import { RedisStore } from '../../lib/store/redis-store.js';
import type { Store } from '../../lib/store/store.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { LogCapture, expectError, expectNoStore, uniqueStream } from '../support/http.js';
import { freePort } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

const RULE = { maxLength: 100, ttlSeconds: 600, metaTtlSeconds: 6000 };

/** A memory store whose methods can be replaced per test. */
function wrappedStore(overrides: Partial<Store>): Store {
  const inner = new MemoryStore(() => RULE);
  return {
    kind: 'memory',
    append: (s, m) => inner.append(s, m),
    read: (s, a, l) => inner.read(s, a, l),
    subscribe: (s) => inner.subscribe(s),
    unsubscribe: (s) => inner.unsubscribe(s),
    setListener: (l) => inner.setListener(l),
    ping: () => inner.ping(),
    close: () => inner.close(),
    ...overrides,
  };
}

describe('health, routing and cross-cutting HTTP behaviour', function () {
  let gw: TestGateway;
  before(async function () {
    gw = await startGateway({ cors: { origins: ['https://app.example.com', 'http://localhost:3000'], maxAgeSeconds: 600 }, auth: { demoToken: true } });
  });
  after(async function () {
    await gw?.shutdown();
  });

  describe('GET /healthz and /readyz', function () {
    it('/healthz answers 200 without credentials', async function () {
      const res = await request(gw.url).get('/healthz');
      expect(res.status).to.equal(200);
      expect(res.body).to.deep.equal({ status: 'ok' });
      expectNoStore(res);
    });

    it('/readyz answers 200 with the memory store', async function () {
      const res = await request(gw.url).get('/readyz');
      expect(res.status).to.equal(200);
      expect(res.body).to.deep.equal({ status: 'ready', store: 'memory' });
    });

    it('/readyz answers 503 store_unavailable with Retry-After when Redis is not there', async function () {
      const port = await freePort();
      const store = new RedisStore({ url: `redis://127.0.0.1:${port}`, keyPrefix: 'pg:', cluster: false, commandTimeoutMs: 200, retention: () => RULE, log: createLogger('silent') });
      await store.connect().catch(() => undefined);
      const dead = await startGateway({}, { store });
      try {
        const res = await request(dead.url).get('/readyz');
        expectError(res, 503, 'store_unavailable');
        expect(res.headers['retry-after']).to.equal('1');
        expect((await request(dead.url).get('/healthz')).status).to.equal(200);
      } finally {
        await dead.shutdown();
      }
    });

    it('/readyz answers 503 shutting_down, closing the connection, once shutdown has started', async function () {
      // A request whose headers have begun arriving keeps its connection open across shutdown();
      // it is handled once the headers are complete, while the gateway drains.
      const g = await startGateway({ server: { shutdownGraceMs: 60_000 } });
      const socket = connect(g.port, '127.0.0.1');
      try {
        let raw = '';
        socket.on('data', (c: Buffer) => (raw += c.toString()));
        const closed = new Promise((r) => socket.once('close', r));
        await new Promise<void>((r) => socket.write('GET /readyz HTTP/1.1\r\nHost: t\r\n', () => r()));
        // A full round trip on another connection: by then the server has read the partial headers.
        expect((await request(g.url).get('/readyz')).status).to.equal(200);
        const stopped = g.shutdown();
        socket.write('\r\n');
        await closed;
        await stopped;
        expect(raw).to.match(/^HTTP\/1\.1 503 /);
        expect(raw).to.include('"code":"shutting_down"');
        expect(raw).to.match(/\r\nRetry-After: 1\r\n/i);
        // So the client moves on now, and shutdown need not wait for the grace deadline.
        expect(raw).to.match(/\r\nConnection: close\r\n/i);
      } finally {
        socket.destroy();
        await g.shutdown();
      }
    });
  });

  describe('unknown paths and wrong methods', function () {
    it('404 JSON for unknown paths', async function () {
      for (const path of ['/nope', '/send/extra', '/poll.json', '/%E0%A4%A', '/..%2f..%2fetc%2fpasswd', '/demo']) {
        expectError(await request(gw.url).get(path), 404, 'not_found');
      }
      expectError(await request(gw.url).post('/nope').send({}), 404, 'not_found');
    });

    const routes: [string, string[], string][] = [
      ['/send', ['GET', 'PUT', 'DELETE', 'PATCH'], 'POST'],
      ['/poll', ['PUT', 'DELETE', 'PATCH'], 'GET, POST, HEAD'],
      ['/healthz', ['POST', 'PUT', 'DELETE'], 'GET, HEAD'],
      ['/readyz', ['POST', 'PUT', 'DELETE'], 'GET, HEAD'],
      ['/demo/token', ['POST', 'PUT', 'DELETE'], 'GET, HEAD'],
    ];
    for (const [path, methods, allow] of routes) {
      it(`405 with Allow: ${allow} for ${methods.join('/')} ${path}`, async function () {
        for (const method of methods) {
          const res = await request(gw.url)[method.toLowerCase() as 'put'](path).set('Authorization', `Bearer ${gw.apiKey}`);
          expectError(res, 405, 'method_not_allowed');
          expectNoStore(res);
          expect(res.headers.allow, `${method} ${path}`).to.equal(allow);
        }
      });
    }
  });

  describe('GET /demo/token', function () {
    it('mints a token that polls room:* and user:<sub> and sends to room:* only', async function () {
      const res = await request(gw.url).get('/demo/token?sub=alice');
      expect(res.status, res.text).to.equal(200);
      expectNoStore(res);
      expect(res.body).to.include({ sub: 'alice' });
      expect(res.body.streams).to.deep.equal(['room:*', 'user:alice']);
      expect(res.body.pub).to.deep.equal(['room:*']);
      expect(res.body.expiresIn).to.equal(3600);
      const { token } = res.body;
      const poll = (streams: string) => request(gw.url).get(`/poll?streams=${streams}&timeout=0`).set('Authorization', `Bearer ${token}`);
      expect((await poll('room:1,user:alice')).status).to.equal(200);
      expectError(await poll('user:bob'), 403, 'forbidden');
      const send = (stream: string) => request(gw.url).post('/send').set('Authorization', `Bearer ${token}`).send({ stream, data: 1 });
      expect((await send(uniqueStream('room:'))).status).to.equal(200);
      expectError(await send('user:alice'), 403, 'forbidden');
      expectError(await send('user:bob'), 403, 'forbidden');
    });

    it('400 on a bad sub', async function () {
      for (const q of ['', 'sub=', 'sub=a%20b', `sub=${'s'.repeat(65)}`, 'sub=a:b', 'sub=a*', 'sub=a&sub=b', `sub=${encodeURIComponent('ålice')}`]) {
        expectError(await request(gw.url).get(`/demo/token?${q}`), 400, 'bad_request');
      }
    });

    it('is not served when auth.demoToken is false, nor by default once a secret and API keys are configured', async function () {
      for (const auth of [{ demoToken: false }, {}]) {
        const prod = await startGateway({ auth });
        try {
          expectError(await request(prod.url).get('/demo/token?sub=alice'), 404, 'not_found');
        } finally {
          await prod.shutdown();
        }
      }
    });
  });

  describe('CORS', function () {
    it('echoes an allowlisted origin, with Vary: Origin and without credentials', async function () {
      for (const origin of ['https://app.example.com', 'http://localhost:3000']) {
        const res = await request(gw.url).get('/healthz').set('Origin', origin);
        expect(res.headers['access-control-allow-origin']).to.equal(origin);
        expect(res.headers.vary).to.match(/\bOrigin\b/);
        expect(res.headers['access-control-allow-credentials']).to.equal(undefined);
        expect(res.headers['access-control-expose-headers']).to.include('X-Request-Id');
      }
    });

    it('lets an allowlisted origin read error answers', async function () {
      const res = await request(gw.url).get('/poll?streams=a').set('Origin', 'https://app.example.com');
      expectError(res, 401, 'unauthorized');
      expect(res.headers['access-control-allow-origin']).to.equal('https://app.example.com');
    });

    for (const origin of ['https://evil.example.com', 'null', 'https://app.example.com.evil.net', 'https://evilapp.example.com', 'https://app.example.co', 'http://app.example.com', 'https://app.example.com/', 'https://APP.example.com', 'http://localhost:30000', 'http://localhost']) {
      it(`gives ${origin} no Access-Control-Allow-Origin`, async function () {
        const res = await request(gw.url).get('/healthz').set('Origin', origin);
        expect(res.status).to.equal(200);
        expect(res.headers['access-control-allow-origin']).to.equal(undefined);
        expect(res.headers.vary).to.match(/\bOrigin\b/);
        const pre = await request(gw.url).options('/send').set('Origin', origin).set('Access-Control-Request-Method', 'POST');
        expect(pre.headers['access-control-allow-origin']).to.equal(undefined);
        expect(pre.headers['access-control-allow-methods']).to.equal(undefined);
      });
    }

    it('sends Vary: Origin without an Origin and on errors', async function () {
      for (const res of [await request(gw.url).get('/healthz'), await request(gw.url).get('/nope'), await request(gw.url).post('/send').send({})]) {
        expect(res.headers.vary).to.match(/\bOrigin\b/);
        expect(res.headers['access-control-allow-origin']).to.equal(undefined);
      }
    });

    it('answers a preflight from an allowlisted origin with methods, headers and Max-Age', async function () {
      const res = await request(gw.url)
        .options('/send')
        .set('Origin', 'https://app.example.com')
        .set('Access-Control-Request-Method', 'POST')
        .set('Access-Control-Request-Headers', 'authorization,content-type');
      expect(res.status).to.equal(204);
      expect(res.headers['access-control-allow-origin']).to.equal('https://app.example.com');
      expect(res.headers['access-control-allow-methods']).to.include('POST');
      expect(res.headers['access-control-allow-headers'].toLowerCase()).to.include('authorization').and.to.include('content-type');
      expect(res.headers['access-control-max-age']).to.equal('600');
      expect(res.headers['access-control-allow-credentials']).to.equal(undefined);
      expect(res.headers.vary).to.match(/\bOrigin\b/);
    });
  });

  describe('headers every answer carries', function () {
    it('sends Referrer-Policy: no-referrer, nosniff and an X-Request-Id on successes and errors', async function () {
      for (const res of [await request(gw.url).get('/healthz'), await request(gw.url).get('/nope'), await request(gw.url).get('/poll')]) {
        expect(res.headers['referrer-policy']).to.equal('no-referrer');
        expect(res.headers['x-content-type-options']).to.equal('nosniff');
        expect(res.headers['x-request-id']).to.match(/^[0-9a-f-]{36}$/);
      }
    });

    it('keeps a well-formed X-Request-Id from the client and replaces a bad one', async function () {
      expect((await request(gw.url).get('/healthz').set('X-Request-Id', 'lb-1234.abc:9')).headers['x-request-id']).to.equal('lb-1234.abc:9');
      for (const bad of ['has space', 'x'.repeat(129), '<script>']) {
        const id = (await request(gw.url).get('/healthz').set('X-Request-Id', bad)).headers['x-request-id'];
        expect(id).not.to.equal(bad);
        expect(id).to.match(/^[0-9a-f-]{36}$/);
      }
    });
  });

  describe('request log and unexpected errors', function () {
    let logged: TestGateway;
    let capture: LogCapture;
    let failReads = false;
    before(async function () {
      capture = new LogCapture();
      const store = wrappedStore({});
      const read = store.read;
      store.read = (s, a, l) => {
        if (failReads) throw new Error('disk on fire at /srv/secret/path');
        return read(s, a, l);
      };
      logged = await startGateway({}, { log: createLogger('info', capture), store });
    });
    after(async function () {
      await logged?.shutdown();
    });

    const logLine = (requestId: string) => capture.waitFor((l) => l.msg === 'request' && l.reqId === requestId);

    it('logs method, path, status and duration per request, with token values redacted', async function () {
      const token = await logged.token({ sub: 'alice', streams: ['room:*'] });
      const res = await request(logged.url).get(`/poll?streams=room:1&timeout=0&token=${token}`);
      expect(res.status).to.equal(200);
      const line = await logLine(res.headers['x-request-id']!);
      expect(line).to.include({ method: 'GET', status: 200 });
      expect(line.url).to.equal('/poll?streams=room:1&timeout=0&token=[REDACTED]');
      expect(line.ms).to.be.a('number');
      expect(capture.text).not.to.include(token);
    });

    it('says how a poll ended: with messages, at its timeout, or with its client gone while parked', async function () {
      const auth = `Bearer ${logged.apiKey}`;
      const sent = await request(logged.url).post('/send').set('Authorization', auth).send({ stream: 'ended:1', data: 1 });
      expect(sent.status).to.equal(200);
      const withMessages = await request(logged.url).get('/poll?streams=ended:1&since=earliest&timeout=0').set('Authorization', auth);
      expect((await logLine(withMessages.headers['x-request-id']!)).end).to.equal('messages');
      const timedOut = await request(logged.url).get('/poll?streams=ended:2&timeout=0.1').set('Authorization', auth);
      expect((await logLine(timedOut.headers['x-request-id']!)).end).to.equal('timeout');

      const req = httpRequest(`${logged.url}/poll?streams=ended:3&timeout=20`, { headers: { authorization: auth, 'x-request-id': 'left-while-parked' }, agent: false });
      req.on('error', () => undefined);
      req.end();
      await waitFor(() => logged.longPolls.size === 1, 'the poll to park');
      req.destroy();
      const gone = await logLine('left-while-parked');
      expect(gone).to.include({ status: 499, end: 'gone' });
    });

    it('redacts the token whatever the case or percent-encoding of its name', async function () {
      const token = await logged.token({ sub: 'bob', streams: ['room:*'] });
      for (const name of ['TOKEN', 'Token', '%74oken', 't%6Fken', 'access_token']) {
        const res = await request(logged.url).get(`/poll?streams=room:1&timeout=0&${name}=${token}`);
        await logLine(res.headers['x-request-id']!);
      }
      expect(capture.text).not.to.include(token);
    });

    it('never logs API keys or Authorization headers', async function () {
      const res = await request(logged.url).post('/send').set('Authorization', `Bearer ${logged.apiKey}`).send({ stream: 'room:1', data: 1, token: logged.apiKey });
      await logLine(res.headers['x-request-id']!);
      expect(capture.text).not.to.include(logged.apiKey);
    });

    it('turns an exception in a handler into a JSON 500, logs it with the request id, and keeps serving', async function () {
      failReads = true;
      let res;
      try {
        res = await request(logged.url).get('/poll?streams=room:1&timeout=0').set('Authorization', `Bearer ${logged.apiKey}`);
      } finally {
        failReads = false;
      }
      expect(res.status).to.equal(500);
      expect(res.body).to.deep.equal({ error: { code: 'internal', message: 'internal error' } });
      expect(res.text).not.to.include('disk on fire');
      const id = res.headers['x-request-id']!;
      const error = await capture.waitFor((l) => l.msg === 'unexpected error' && l.reqId === id);
      expect(error.level).to.equal(50);
      expect(error.err.message).to.include('disk on fire');
      expect(error.err.stack).to.be.a('string');
      expect((await logLine(id)).status).to.equal(500);

      expect((await request(logged.url).get('/healthz')).status).to.equal(200);
      const again = await request(logged.url).get('/poll?streams=room:1&timeout=0').set('Authorization', `Bearer ${logged.apiKey}`);
      expect(again.status).to.equal(200);
    });

    it('at warn writes no request lines but still logs an unexpected error with its request id', async function () {
      const quiet = new LogCapture();
      const store = wrappedStore({});
      store.read = () => {
        throw new Error('quiet failure');
      };
      const gw = await startGateway({}, { log: createLogger('warn', quiet), store });
      try {
        const ok = await request(gw.url).get('/healthz');
        expect(ok.headers['x-request-id']).to.be.a('string');
        const res = await request(gw.url).get('/poll?streams=room:1&timeout=0').set('Authorization', `Bearer ${gw.apiKey}`);
        expect(res.status).to.equal(500);
        const id = res.headers['x-request-id']!;
        const error = await quiet.waitFor((l) => l.msg === 'unexpected error' && l.reqId === id);
        expect(error.err.message).to.include('quiet failure');
      } finally {
        await gw.shutdown();
      }
      expect(quiet.text).not.to.include('"msg":"request"');
    });
  });
});
