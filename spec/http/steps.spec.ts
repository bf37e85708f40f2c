import { expect } from 'chai';
import type { Context } from 'koa';
import { chainSteps, type Step, type StepNext } from '../../lib/http/steps.js';

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
