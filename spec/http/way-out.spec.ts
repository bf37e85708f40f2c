import { expect } from 'chai';
import Koa, { type Context } from 'koa';
import request from 'supertest';
import { BadRequestError } from '../../lib/errors.js';
import { RequestTracker } from '../../lib/http/request-tracker.js';
import { wayOut } from '../../lib/http/way-out.js';

describe('wayOut', function () {
  const head = (ctx: Context) => ctx.set('x-head', 'on');
  let tracker: RequestTracker;
  let inFlightInside: number[];
  let app: Koa;

  beforeEach(function () {
    tracker = new RequestTracker();
    inFlightInside = [];
    app = new Koa();
    app.silent = true;
    app.use(wayOut(head, tracker));
    app.use((ctx) => {
      inFlightInside.push(tracker.inFlight);
      if (ctx.path === '/refused') throw new BadRequestError('no such thing');
      if (ctx.path === '/later') {
        ctx.respond = false;
        ctx.res.end('written by its own writer');
        return;
      }
      ctx.body = 'fine';
    });
  });

  it('gives an answer its head and counts the request while it is inside', async function () {
    const res = await request(app.callback()).get('/fine');
    expect(res.text).to.equal('fine');
    expect(res.headers['x-head']).to.equal('on');
    expect(inFlightInside).to.deep.equal([1]);
    expect(tracker.inFlight).to.equal(0);
    expect(tracker.total).to.equal(1);
  });

  it('renders a thrown error as the JSON error, with the head', async function () {
    const res = await request(app.callback()).get('/refused');
    expect(res.status).to.equal(400);
    expect(res.body).to.deep.equal({ error: { code: 'bad_request', message: 'no such thing' } });
    expect(res.headers['x-head']).to.equal('on');
    expect(tracker.inFlight).to.equal(0);
  });

  it('leaves the head of an answer written later to its writer', async function () {
    const res = await request(app.callback()).get('/later');
    expect(res.text).to.equal('written by its own writer');
    expect(res.headers['x-head']).to.equal(undefined);
    expect(tracker.inFlight).to.equal(0);
  });
});
