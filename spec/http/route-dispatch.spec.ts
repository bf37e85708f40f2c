import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { expect } from 'chai';
import Koa from 'koa';
import Router from 'koa-router';
import request from 'supertest';
import { rememberedDispatch } from '../../lib/http/route-dispatch.js';
import { startGateway, type TestGateway } from '../support/gateway.js';

/** koa-router's Layer: every pattern test of a request goes through its match(). */
const Layer = createRequire(import.meta.url)('koa-router/lib/layer.js') as { prototype: { match(path: string): boolean } };

/** Counts koa-router's pattern tests while `run` runs. */
async function patternTests(run: () => Promise<unknown>): Promise<number> {
  const original = Layer.prototype.match;
  let tests = 0;
  Layer.prototype.match = function (this: unknown, path: string) {
    tests++;
    return original.call(this, path);
  };
  try {
    await run();
  } finally {
    Layer.prototype.match = original;
  }
  return tests;
}

describe("koa-router's dispatch, remembered (rememberedDispatch)", function () {
  let server: Server;
  let url: string;
  let seen: string[][];

  before(async function () {
    const router = new Router({ strict: true, sensitive: true });
    router.get('/a', (ctx) => { ctx.body = 'a'; });
    router.post('/a', (ctx) => { ctx.body = 'posted a'; });
    router.get('/b', (ctx) => { ctx.body = 'b'; });
    router.all('/c', (ctx) => { ctx.body = 'c'; });
    const app = new Koa();
    seen = [];
    app.use(async (ctx, next) => {
      await next();
      const matched = (ctx as unknown as { matched?: { path: string }[] }).matched ?? [];
      seen.push(matched.map((layer) => layer.path));
      // A later router would push to ctx.matched: the remembered result must not change with it.
      matched.push({ path: '/pushed-by-the-host' });
    });
    app.use(rememberedDispatch(router));
    server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(function (done) {
    server.close(done);
  });

  it('tests the patterns once per path and method of the table, then not again', async function () {
    const first = await patternTests(() => request(url).get('/a').expect(200, 'a'));
    expect(first).to.equal(4);
    const again = await patternTests(async () => {
      await request(url).get('/a').expect(200, 'a');
      await request(url).get('/a').expect(200, 'a');
    });
    expect(again).to.equal(0);
    // Another method on the same path is its own entry, and dispatches to its own handler.
    expect(await patternTests(() => request(url).post('/a').expect(200, 'posted a'))).to.equal(4);
    expect(await patternTests(() => request(url).post('/a').expect(200, 'posted a'))).to.equal(0);
  });

  it('matches paths outside the table every time, so requests cannot grow the cache', async function () {
    for (const path of ['/nope', '/A', '/a/', '/b/x']) {
      expect(await patternTests(() => request(url).get(path).expect(404))).to.equal(4);
      expect(await patternTests(() => request(url).get(path).expect(404))).to.equal(4);
    }
  });

  it('gives each request its own ctx.matched, as without the cache', async function () {
    seen.length = 0;
    await request(url).get('/b').expect(200, 'b');
    await request(url).get('/b').expect(200, 'b');
    await request(url).put('/c').expect(200, 'c');
    expect(seen).to.deep.equal([['/b'], ['/b'], ['/c']]);
  });
});

describe("rememberedDispatch routes as koa-router's own dispatch does", function () {
  /** What a handler sees of the routing: the fields koa-router sets on ctx. */
  type Seen = Record<string, unknown>;

  /** A table with a named route, a parameter route, a router-wide middleware layer and two methods on one path. */
  function table(seen: Seen[], exclusive = false): Router {
    const router = new Router({ strict: true, sensitive: true, exclusive } as ConstructorParameters<typeof Router>[0]);
    router.use(async (_ctx, next) => next());
    const record = (ctx: Koa.Context) => {
      const c = ctx as unknown as Record<string, unknown> & { matched: { path: string }[] };
      seen.push({
        path: ctx.path, method: ctx.method, matched: c.matched.map((layer) => layer.path), params: c.params, requestParams: (ctx.request as unknown as { params: unknown }).params,
        captures: c.captures, routerPath: c.routerPath, routerName: c.routerName, matchedRoute: c._matchedRoute, matchedRouteName: c._matchedRouteName,
      });
      ctx.body = 'ok';
    };
    router.get('named', '/a', record);
    router.post('/a', record);
    router.all('/b', record);
    router.get('/users/:id', record);
    return router;
  }

  async function listen(middleware: Koa.Middleware): Promise<{ server: Server; url: string }> {
    const app = new Koa();
    app.use(middleware);
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
  }

  /** A host's own router in front: it sets ctx.matched, params and captures before the table's. */
  function hostInFront(inner: Koa.Middleware): Koa.Middleware {
    const host = new Router({ strict: true, sensitive: true });
    host.get('/:first', (ctx, next) => next());
    const routes = host.routes() as Koa.Middleware;
    return (ctx, next) => routes(ctx, () => inner(ctx, next));
  }

  const setUps: [string, (seen: Seen[], remembered: boolean) => Koa.Middleware][] = [
    ['a plain table', (seen, remembered) => (remembered ? rememberedDispatch(table(seen)) : (table(seen).routes() as Koa.Middleware))],
    ['an exclusive table', (seen, remembered) => (remembered ? rememberedDispatch(table(seen, true)) : (table(seen, true).routes() as Koa.Middleware))],
    ['a table behind a host router', (seen, remembered) => hostInFront(remembered ? rememberedDispatch(table(seen)) : (table(seen).routes() as Koa.Middleware))],
  ];

  for (const [name, setUp] of setUps) {
    it(`sets the same ctx fields, request after request, for paths in the table and outside it (${name})`, async function () {
      const plainSeen: Seen[] = [];
      const rememberedSeen: Seen[] = [];
      const plain = await listen(setUp(plainSeen, false));
      const remembered = await listen(setUp(rememberedSeen, true));
      try {
        for (const target of [plain, remembered]) {
          for (let round = 0; round < 2; round++) {
            await request(target.url).get('/a').expect(200);
            await request(target.url).post('/a').expect(200);
            await request(target.url).put('/b').expect(200);
            await request(target.url).head('/a').expect(200);
            await request(target.url).get('/users/7').expect(200);
            // The parameter route's own path, asked for literally: remembered, with a capture.
            await request(target.url).get('/users/:id').expect(200);
            await request(target.url).delete('/a').expect(404);
            await request(target.url).get('/nope').expect(404);
          }
        }
        expect(rememberedSeen).to.have.length(12);
        expect(rememberedSeen).to.deep.equal(plainSeen);
      } finally {
        plain.server.close();
        remembered.server.close();
      }
    });
  }

  it('leaves a method Node does not know (a host\'s method override) to koa-router, unremembered', async function () {
    const seen: Seen[] = [];
    const router = table(seen);
    const dispatch = rememberedDispatch(router);
    const target = await listen((ctx, next) => {
      const override = ctx.get('x-method');
      if (override) ctx.method = override;
      return dispatch(ctx, next);
    });
    try {
      for (const method of ['PURGE-1', 'PURGE-2']) {
        // No layer has such a method (koa-router's all() means its own list): a 404, matched afresh each time.
        expect(await patternTests(() => request(target.url).get('/b').set('x-method', method).expect(404))).to.equal(router.stack.length);
        expect(await patternTests(() => request(target.url).get('/b').set('x-method', method).expect(404))).to.equal(router.stack.length);
      }
      expect(seen).to.deep.equal([]);
    } finally {
      target.server.close();
    }
  });

  it("composes a path's chain once, not on every request", async function () {
    const router = table([]);
    // koa-router's own dispatch spreads every matched layer's stack into a new chain on each request.
    let stackReads = 0;
    for (const layer of router.stack) {
      const stack = layer.stack;
      Object.defineProperty(layer, 'stack', { get: () => (stackReads++, stack), configurable: true });
    }
    const target = await listen(rememberedDispatch(router));
    try {
      await request(target.url).get('/a').expect(200, 'ok');
      const afterFirst = stackReads;
      expect(afterFirst).to.be.above(0);
      for (let i = 0; i < 3; i++) await request(target.url).get('/a').expect(200, 'ok');
      expect(stackReads).to.equal(afterFirst);
    } finally {
      target.server.close();
    }
  });

  it("calls a path's one handler directly, with the caller's next: no chain made per request", async function () {
    const router = new Router({ strict: true, sensitive: true });
    const nexts: unknown[] = [];
    router.get('/one', (ctx, next) => {
      nexts.push(next);
      ctx.state.answered = true;
    });
    const dispatch = rememberedDispatch(router);
    const app = new Koa();
    const callersNext = async () => undefined;
    for (let i = 0; i < 2; i++) {
      const ctx = app.createContext({ url: '/one', method: 'GET', headers: {}, socket: {} } as never, {} as never);
      await dispatch(ctx, callersNext);
      expect(ctx.state.answered).to.equal(true);
      expect((ctx as unknown as { params: object }).params).to.deep.equal({});
      expect((ctx as unknown as { _matchedRoute: string })._matchedRoute).to.equal('/one');
    }
    // koa-compose would hand each request's handler a next bound for that request.
    expect(nexts).to.deep.equal([callersNext, callersNext]);
  });

  it("matches no pattern again for a path without captures, and still gives a path's parameters", async function () {
    const LayerCaptures = Layer.prototype as unknown as { captures(path: string): string[] };
    const original = LayerCaptures.captures;
    let matched = 0;
    LayerCaptures.captures = function (this: unknown, path: string) {
      matched++;
      return original.call(this, path);
    };
    try {
      const router = new Router({ strict: true, sensitive: true });
      router.get('/plain', (ctx) => (ctx.state.seen = { params: ctx.params, captures: (ctx as unknown as { captures: string[] }).captures }));
      router.get('/items/:id', (ctx) => (ctx.state.seen = { params: ctx.params, captures: (ctx as unknown as { captures: string[] }).captures }));
      const dispatch = rememberedDispatch(router);
      const app = new Koa();
      const seen = async (url: string) => {
        const ctx = app.createContext({ url, method: 'GET', headers: {}, socket: {} } as never, {} as never);
        await dispatch(ctx, async () => undefined);
        return ctx.state.seen as { params: object; captures: string[] };
      };
      for (let i = 0; i < 3; i++) expect(await seen('/plain')).to.deep.equal({ params: {}, captures: [] });
      // koa-router matched /plain's pattern again on every request, for no captures.
      expect(matched).to.equal(0);
      expect(await seen('/items/7')).to.deep.equal({ params: { id: '7' }, captures: ['7'] });
      expect(matched).to.equal(1);
    } finally {
      LayerCaptures.captures = original;
    }
  });

  it('refuses a table that routes by host, which it does not remember', function () {
    expect(() => rememberedDispatch(new Router({ host: 'example.com' } as ConstructorParameters<typeof Router>[0]))).to.throw(/host/);
  });
});

describe("the gateway's router remembers its matches", function () {
  let gw: TestGateway;
  before(async function () {
    gw = await startGateway();
  });
  after(async function () {
    await gw?.shutdown();
  });

  it('tests no route pattern for a path it has answered before', async function () {
    await request(gw.url).get('/healthz').expect(200);
    expect(await patternTests(() => request(gw.url).get('/healthz').expect(200))).to.equal(0);
    expect(await patternTests(() => request(gw.url).get('/send').expect(405))).to.be.above(0);
    expect(await patternTests(() => request(gw.url).get('/send').expect(405))).to.equal(0);
  });
});
