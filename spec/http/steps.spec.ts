import { expect } from 'chai';
import type { Context } from 'koa';
import type { Middleware } from 'koa';
import Koa from 'koa';
import request from 'supertest';
import { chainSteps, composeSole, type Step, type StepNext } from '../../lib/http/steps.js';

describe('chainSteps', function () {
  const ctxA = { name: 'a' } as unknown as Context;
  const ctxB = { name: 'b' } as unknown as Context;

  it('runs the steps in order, then the last, each with the context it was given', async function () {
    const seen: string[] = [];
    const step = (tag: string): Step => (ctx, next) => {
      seen.push(`${tag}:${(ctx as unknown as { name: string }).name}`);
      return next(ctx);
    };
    const run = chainSteps([step('one'), step('two')], (ctx) => seen.push(`last:${(ctx as unknown as { name: string }).name}`));
    await run(ctxA);
    await run(ctxB);
    expect(seen).to.deep.equal(['one:a', 'two:a', 'last:a', 'one:b', 'two:b', 'last:b']);
  });

  it('gives a step the same next on every request: none is made per request', async function () {
    // koa-compose binds a new next for each step of each request; this is what chainSteps saves.
    const nexts: StepNext[] = [];
    const run = chainSteps([(ctx, next) => (nexts.push(next), next(ctx))], () => undefined);
    await run(ctxA);
    await run(ctxB);
    expect(nexts).to.have.length(2);
    expect(nexts[0]).to.equal(nexts[1]);
  });

  it('ends the chain at a step that does not go on', async function () {
    let reachedLast = false;
    const run = chainSteps([() => 'answered here'], () => (reachedLast = true));
    await run(ctxA);
    expect(reachedLast).to.equal(false);
  });

  it('answers with a promise that rejects when a step throws, also before any await', async function () {
    const run = chainSteps([() => {
      throw new Error('refused');
    }], () => undefined);
    let returned: unknown;
    expect(() => (returned = run(ctxA))).not.to.throw();
    expect(returned).to.be.instanceOf(Promise);
    await (returned as Promise<void>).then(
      () => expect.fail('should reject'),
      (err: Error) => expect(err.message).to.equal('refused'),
    );
  });

  it('lets an earlier step catch what a later one threw synchronously', async function () {
    const caught: string[] = [];
    const guard: Step = async (ctx, next) => {
      try {
        await next(ctx);
      } catch (err) {
        caught.push((err as Error).message);
      }
    };
    const run = chainSteps([guard], () => {
      throw new Error('not found');
    });
    await run(ctxA);
    expect(caught).to.deep.equal(['not found']);
  });
});

describe('composeSole (Koa\'s compose for the standalone app)', function () {
  it('calls an app\'s one middleware with the same next on every request, as a Koa app', async function () {
    const nexts: unknown[] = [];
    const after: unknown[] = [];
    const app = new Koa({ compose: composeSole } as ConstructorParameters<typeof Koa>[0]);
    app.use(async (ctx, next) => {
      nexts.push(next);
      after.push(await next());
      ctx.body = `seen ${ctx.path}`;
    });
    const server = app.callback();
    expect((await request(server).get('/a')).text).to.equal('seen /a');
    expect((await request(server).get('/b')).text).to.equal('seen /b');
    // koa-compose binds a new next for each request.
    expect(nexts).to.have.length(2);
    expect(nexts[0]).to.equal(nexts[1]);
    expect(after).to.deep.equal([undefined, undefined]);
  });

  it('renders what the middleware throws, at once or later, as Koa does', async function () {
    const app = new Koa({ compose: composeSole } as ConstructorParameters<typeof Koa>[0]);
    app.silent = true;
    let sync = true;
    app.use((ctx) => {
      if (sync) throw Object.assign(new Error('at once'), { status: 418, expose: true });
      return Promise.reject(Object.assign(new Error('later'), { status: 409, expose: true }));
    });
    const server = app.callback();
    expect((await request(server).get('/')).status).to.equal(418);
    sync = false;
    expect((await request(server).get('/')).status).to.equal(409);
  });

  it('leaves a chain of several middleware to koa-compose', async function () {
    const order: string[] = [];
    const mw = (tag: string): Middleware => async (_ctx, next) => {
      order.push(tag);
      await next();
    };
    await composeSole([mw('a'), mw('b')])({} as Context);
    expect(order).to.deep.equal(['a', 'b']);
  });
});
