/**
 * pollgate embedded in a host Koa app, in process: createGateway() + middleware() + attach() +
 * close() as README.md "Embedding in a Koa app" shows them, and what the host keeps for itself.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { expect } from 'chai';
import Koa, { type Context, type Middleware } from 'koa';
import request from 'supertest';
import { WebSocket, WebSocketServer } from 'ws';
import { ConfigError, createGateway, type Gateway, type GatewayOptions } from '../../lib/index.js';
import { WsClient } from '../support/clients.js';
import { TEST_API_KEY, TEST_SECRET } from '../support/gateway.js';
import { expectError, poll, uniqueStream, untilParked } from '../support/http.js';
import { rawExchange } from '../support/raw-http.js';
import { redisClient, sharedRedis, uniquePrefix } from '../support/redis.js';

const ORIGIN = 'https://app.example';
const AUTH = `Bearer ${TEST_API_KEY}`;
// Headers pollgate sets on its own answers; a request it passes on must carry none of them.
const POLLGATE_HEADERS = ['x-request-id', 'x-content-type-options', 'referrer-policy', 'cache-control', 'pragma', 'access-control-allow-origin', 'vary'];

function options(extra: GatewayOptions = {}): GatewayOptions {
  return { auth: { apiKeys: [TEST_API_KEY], secret: TEST_SECRET }, cors: { origins: [ORIGIN] }, log: { level: 'silent' }, mount: '/rt', ...extra };
}

/** A host app: `before` (e.g. a body parser), then pollgate, then a catch-all route of the host's own. */
function hostApp(gateway: Gateway, before: Middleware[] = []): Koa {
  const app = new Koa();
  for (const m of before) app.use(m);
  app.use(gateway.middleware());
  app.use((ctx) => {
    ctx.body = `host ${ctx.method} ${ctx.path}`;
  });
  return app;
}

function readAll(ctx: Context): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    ctx.req.setEncoding('utf8');
    ctx.req.on('data', (chunk: string) => (text += chunk));
    ctx.req.once('end', () => resolve(text));
    ctx.req.once('error', reject);
  });
}

/**
 * Subscribes and awaits the confirmation. (WsClient.subscribe() also races an error frame whose
 * 5 s deadline outlives the test and holds mocha's exit.)
 */
function subscribe(ws: WsClient, streams: string[]): Promise<unknown> {
  ws.send({ type: 'subscribe', streams, ref: 'embed' });
  return ws.next('subscribed', (f) => f.ref === 'embed');
}

interface Listening {
  server: Server;
  url: string;
  close(): Promise<void>;
}

async function listen(app: Koa, serverOptions: { maxHeaderSize?: number } = {}): Promise<Listening> {
  const server = createServer(serverOptions, app.callback());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    server,
    url,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

describe('createGateway() in a host Koa app', () => {
  let gateway: Gateway;
  let app: Koa;

  beforeEach(async () => {
    gateway = await createGateway(options());
    app = hostApp(gateway);
  });

  afterEach(async () => {
    await gateway.close();
  });

  describe('middleware()', () => {
    it('serves /send and a timeout=0 /poll under the mount through app.callback(), with no server of its own', async () => {
      const stream = uniqueStream();
      const sent = await request(app.callback()).post('/rt/send').set('Authorization', AUTH).send({ stream, data: { n: 1 } });
      expect(sent.status, sent.text).to.equal(200);
      expect(sent.body.results[0]).to.include({ stream, seq: 1 });
      expect(sent.headers['x-request-id']).to.be.a('string');

      const polled = await request(app.callback()).get(`/rt/poll?streams=${stream}&since=earliest&timeout=0`).set('Authorization', AUTH);
      expect(polled.status, polled.text).to.equal(200);
      expect(polled.body.messages.map((m: { data: unknown }) => m.data)).to.deep.equal([{ n: 1 }]);
      expect(polled.body.cursor).to.be.a('string');
    });

    it('mints client tokens that read and send only what their patterns allow', async () => {
      const token = await gateway.mintToken({ sub: 'alice', streams: ['room:*'], pub: ['room:*'], ttlSeconds: 60 });
      const bearer = `Bearer ${token}`;
      const sent = await request(app.callback()).post('/rt/send').set('Authorization', bearer).send({ stream: 'room:mint', data: 1 });
      expect(sent.status, sent.text).to.equal(200);
      const polled = await request(app.callback()).get('/rt/poll?streams=room:mint&since=earliest&timeout=0').set('Authorization', bearer);
      expect(polled.body.messages.map((m: { data: unknown }) => m.data)).to.deep.equal([1]);
      const refused = await request(app.callback()).get('/rt/poll?streams=user:bob&timeout=0').set('Authorization', bearer);
      expect(refused.status).to.equal(403);
      expect(refused.body.error.code).to.equal('forbidden');
    });

    for (const path of ['/', '/hello', '/rtx/poll', '/rtx', '/rt/unknown', '/rt/poll/', '/RT/poll', '/poll', '/send']) {
      it(`passes ${path} to the host untouched (no pollgate headers, even with a CORS origin)`, async () => {
        const res = await request(app.callback()).get(path).set('Origin', ORIGIN).set('Authorization', AUTH);
        expect(res.status).to.equal(200);
        expect(res.text).to.equal(`host GET ${path}`);
        for (const header of POLLGATE_HEADERS) expect(res.headers, header).not.to.have.property(header);
      });
    }

    it('answers its own paths with its headers (CORS for a configured origin)', async () => {
      const res = await request(app.callback()).get('/rt/healthz').set('Origin', ORIGIN);
      expect(res.status).to.equal(200);
      expect(res.headers['x-request-id']).to.be.a('string');
      expect(res.headers['access-control-allow-origin']).to.equal(ORIGIN);
    });

    it('answers 405 with Allow for a method a path under the mount does not take', async () => {
      const put = await request(app.callback()).put('/rt/poll').set('Authorization', AUTH);
      expectError(put, 405, 'method_not_allowed');
      expect(put.headers.allow).to.equal('GET, POST, HEAD');
      const get = await request(app.callback()).get('/rt/send').set('Authorization', AUTH);
      expectError(get, 405, 'method_not_allowed');
      expect(get.headers.allow).to.equal('POST');
    });

    it('answers HEAD like GET without a body, and leaves the host HEAD of its own paths', async () => {
      const health = await request(app.callback()).head('/rt/healthz');
      expect(health.status).to.equal(200);
      expect(health.text ?? '').to.equal('');
      const client = await request(app.callback()).head('/rt/pollgate.js');
      expect(client.status).to.equal(200);
      expect(client.headers['content-type']).to.match(/javascript/);
      const host = await request(app.callback()).head('/hello');
      expect(host.status).to.equal(200);
      expect(host.headers).not.to.have.property('x-request-id');
    });

    it('redirects the bare mount to <mount>/ (the demo page loads its files relative to it)', async () => {
      const res = await request(app.callback()).get('/rt');
      expect(res.status).to.equal(301);
      expect(res.headers.location).to.equal('/rt/');
    });

    it('answers every path it does not serve with its JSON 404 when fallthrough is false', async () => {
      const strict = new Koa();
      strict.use(gateway.middleware({ fallthrough: false }));
      expectError(await request(strict.callback()).get('/rt/unknown'), 404, 'not_found');
      expectError(await request(strict.callback()).get('/elsewhere'), 404, 'not_found');
    });
  });

  describe('request bodies read by the host first', () => {
    it('uses a body a host body parser already put in ctx.request.body', async () => {
      const parser: Middleware = async (ctx, next) => {
        if (ctx.is('application/json')) (ctx.request as { body?: unknown }).body = JSON.parse(await readAll(ctx));
        await next();
      };
      const parsed = hostApp(gateway, [parser]);
      const stream = uniqueStream();
      const sent = await request(parsed.callback()).post('/rt/send').set('Authorization', AUTH).send({ stream, data: 'parsed by the host' });
      expect(sent.status, sent.text).to.equal(200);
      const polled = await request(parsed.callback()).get(`/rt/poll?streams=${stream}&since=earliest&timeout=0`).set('Authorization', AUTH);
      expect(polled.body.messages.map((m: { data: unknown }) => m.data)).to.deep.equal(['parsed by the host']);
    });

    it('answers 400 at once, naming the cause, when a host middleware consumed the body and kept nothing', async () => {
      const swallow: Middleware = async (ctx, next) => {
        await readAll(ctx);
        await next();
      };
      const res = await request(hostApp(gateway, [swallow]).callback()).post('/rt/send').set('Authorization', AUTH).send({ stream: uniqueStream(), data: 1 });
      const error = expectError(res, 400, 'bad_request');
      expect(error.message).to.match(/before body-parsing middleware/);
    });
  });

  describe('attach() on a real server', () => {
    let host: Listening;
    const sockets: WsClient[] = [];

    beforeEach(async () => {
      host = await listen(app);
      gateway.attach(host.server);
    });

    afterEach(async () => {
      await Promise.all(sockets.splice(0).map((s) => s.close()));
      await host.close();
    });

    it('takes a WebSocket on <mount>/ws and delivers a message sent to /send', async () => {
      const ws = await WsClient.open(`${host.url}/rt`, { token: TEST_API_KEY });
      sockets.push(ws);
      const stream = uniqueStream();
      await subscribe(ws, [stream]);
      const sent = await request(host.url).post('/rt/send').set('Authorization', AUTH).send({ stream, data: 'over ws' });
      expect(sent.status, sent.text).to.equal(200);
      const got = await ws.messages(1);
      expect(got.messages.map((m) => m.data)).to.deep.equal(['over ws']);
    });

    it("leaves an upgrade on another path to the host's own 'upgrade' listener", async () => {
      const chat = new WebSocketServer({ noServer: true });
      const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
        if (req.url === '/chat') chat.handleUpgrade(req, socket, head, (ws) => ws.send('host chat'));
      };
      host.server.on('upgrade', onUpgrade);
      const ws = new WebSocket(`${host.url.replace('http', 'ws')}/chat`);
      try {
        const greeting = await new Promise<string>((resolve, reject) => {
          ws.once('message', (data) => resolve(data.toString()));
          ws.once('error', reject);
        });
        expect(greeting).to.equal('host chat');
      } finally {
        ws.terminate();
        host.server.off('upgrade', onUpgrade);
        await new Promise((resolve) => chat.close(resolve));
      }
    });
  });

  describe("attach() and the requests Node's parser refuses", () => {
    let host: Listening;
    afterEach(async () => {
      await host.close();
    });
    /** A GET whose head is over a 4 KiB limit, on the host's own server. */
    const tooLong = () => rawExchange(Number(new URL(host.url).port), `GET /rt/poll?streams=${'s,'.repeat(3000)}s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);

    it("leaves them to Node by default: the host's server is the host's", async () => {
      host = await listen(app, { maxHeaderSize: 4096 });
      gateway.attach(host.server);
      const r = await tooLong();
      expect(r.status).to.equal(431);
      expect(r.body).to.equal('');
    });

    it('answers them with the JSON error, naming the server\'s own limit, with clientErrors: true; close() takes the listener off', async () => {
      host = await listen(app, { maxHeaderSize: 4096 });
      const before = host.server.listenerCount('clientError');
      gateway.attach(host.server, { clientErrors: true });
      expect(host.server.listenerCount('clientError')).to.equal(before + 1);
      const r = await tooLong();
      expect(r.status).to.equal(431);
      const { error } = JSON.parse(r.body) as { error: { code: string; message: string } };
      expect(error.code).to.equal('headers_too_large');
      expect(error.message).to.include('over 4096 bytes');
      await gateway.close();
      expect(host.server.listenerCount('clientError')).to.equal(before);
    });

    it('takes a second attach() with the same options as done, and refuses other options or a closed gateway', async () => {
      host = await listen(app);
      gateway.attach(host.server, { clientErrors: true });
      gateway.attach(host.server, { clientErrors: true });
      expect(host.server.listenerCount('clientError')).to.equal(1);
      expect(host.server.listenerCount('upgrade')).to.equal(1);
      expect(() => gateway.attach(host.server)).to.throw(/attached already, with other options/);
      expect(() => gateway.attach(host.server, { clientErrors: true, fallthrough: false })).to.throw(/other options/);
      await gateway.close();
      expect(() => gateway.attach(host.server, { clientErrors: true })).to.throw(/closed/);
      expect(host.server.listenerCount('clientError')).to.equal(0);
    });
  });

  describe('close()', () => {
    let host: Listening;

    beforeEach(async () => {
      host = await listen(app);
      gateway.attach(host.server);
    });

    afterEach(async () => {
      await host.close();
    });

    it('answers a parked poll at once with its cursor unchanged', async () => {
      const stream = uniqueStream();
      const mount = `${host.url}/rt`;
      const { cursor } = await poll(mount, TEST_API_KEY, { streams: stream, timeout: 0 });
      const started = Date.now();
      const parked = poll(mount, TEST_API_KEY, { streams: stream, cursor, timeout: 55 });
      await untilParked(mount, TEST_API_KEY, 1);
      await gateway.close();
      const answer = await parked;
      expect(answer).to.deep.equal({ messages: [], cursor });
      // Far below the 55 s hold (and the test's own timeout): the drain answered it.
      expect(Date.now() - started).to.be.below(10_000);
    });

    it('closes an open WebSocket with 1001', async () => {
      const ws = await WsClient.open(`${host.url}/rt`, { token: TEST_API_KEY });
      try {
        await subscribe(ws, [uniqueStream()]);
        await gateway.close();
        expect((await ws.closed).code).to.equal(1001);
      } finally {
        await ws.close();
      }
    });
  });
});

describe('createGateway() options', () => {
  async function rejection(bad: unknown): Promise<Error> {
    try {
      const gateway = await createGateway(bad as GatewayOptions);
      await gateway.close();
    } catch (err) {
      return err as Error;
    }
    throw new Error('createGateway accepted bad options');
  }

  it("rejects a mount with a trailing slash ('rt/') with a ConfigError naming mount", async () => {
    const err = await rejection(options({ mount: 'rt/' }));
    expect(err).to.be.instanceOf(ConfigError);
    expect(err.message).to.match(/\bmount\b/);
  });

  it('rejects an unknown key (redis.uri) with a ConfigError naming it', async () => {
    const err = await rejection({ ...options(), redis: { uri: 'redis://127.0.0.1:6379' } });
    expect(err).to.be.instanceOf(ConfigError);
    expect(err.message).to.match(/\bredis\b/).and.to.match(/\buri\b/);
  });
});

describe('createGateway() on the Redis store', () => {
  it('serves /send and /poll from Redis under its own key prefix', async () => {
    const redis = await sharedRedis();
    const keyPrefix = uniquePrefix();
    const gateway = await createGateway(options({ redis: { url: redis.url, keyPrefix } }));
    const admin = redisClient(redis.url);
    try {
      const app = hostApp(gateway);
      const stream = uniqueStream();
      const sent = await request(app.callback()).post('/rt/send').set('Authorization', AUTH).send({ stream, data: 'in redis' });
      expect(sent.status, sent.text).to.equal(200);
      const polled = await request(app.callback()).get(`/rt/poll?streams=${stream}&since=earliest&timeout=0`).set('Authorization', AUTH);
      expect(polled.body.messages.map((m: { data: unknown }) => m.data)).to.deep.equal(['in redis']);
      expect(await admin.keys(`${keyPrefix}*`)).to.not.be.empty;
      expect((await request(app.callback()).get('/rt/readyz')).status).to.equal(200);
    } finally {
      await gateway.close();
      admin.disconnect();
    }
  });
});
