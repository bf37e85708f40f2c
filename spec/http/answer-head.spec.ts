/**
 * The headers every answer carries are set as its head is written (lib/http/answer-head.ts): by
 * the pipeline for the answers Koa writes, by LaterAnswers for a parked poll's answer, by the SSE
 * route for an event stream. Each writer must give the same headers, and a parked poll must hold
 * none while it waits.
 */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { expect } from 'chai';
import { TEST_API_KEY, TEST_SECRET } from '../support/gateway.js';
import { gatewayInHost, type HostedGateway } from '../support/host-app.js';
import { uniqueStream, untilParked } from '../support/http.js';

const ORIGIN = 'https://app.example.com';
const AUTH = `Bearer ${TEST_API_KEY}`;

function expectCommonHeaders(headers: Headers | IncomingHttpHeaders, what: string): void {
  const get = (name: string) => (headers instanceof Headers ? headers.get(name) : (headers[name] as string | undefined)) ?? undefined;
  expect(get('x-request-id'), what).to.match(/^[0-9a-f-]{36}$/);
  expect(get('x-content-type-options'), what).to.equal('nosniff');
  expect(get('referrer-policy'), what).to.equal('no-referrer');
  expect(get('vary'), what).to.match(/\bOrigin\b/);
  expect(get('access-control-allow-origin'), what).to.equal(ORIGIN);
}

describe('the answer head (lib/http/answer-head.ts)', function () {
  let host: HostedGateway;
  let url: string;

  before(async function () {
    host = await gatewayInHost({ auth: { apiKeys: [TEST_API_KEY], secret: TEST_SECRET }, cors: { origins: [ORIGIN] }, log: { level: 'silent' } });
    url = host.url;
  });

  after(async function () {
    await host?.close();
  });

  it('a parked poll holds no answer header while it waits, and its answer carries them all', async function () {
    const stream = uniqueStream('head');
    const answer = fetch(`${url}/poll?streams=${stream}&timeout=30`, { headers: { authorization: AUTH, origin: ORIGIN } });
    await untilParked(url, TEST_API_KEY, 1);
    expect(host.lastPoll()!.res.getHeaderNames()).to.deep.equal([]);
    const sent = await fetch(`${url}/send`, { method: 'POST', headers: { authorization: AUTH, 'content-type': 'application/json' }, body: JSON.stringify({ stream, data: 1 }) });
    expect(sent.status).to.equal(200);
    const res = await answer;
    expect(res.status).to.equal(200);
    expectCommonHeaders(res.headers, 'a parked poll');
    expect(res.headers.get('access-control-expose-headers')).to.include('X-Request-Id');
    expect(res.headers.get('cache-control')).to.include('no-store');
    expect((await res.json()).messages).to.have.length(1);
  });

  it('an answer Koa writes, an error and a preflight carry them', async function () {
    const ok = await fetch(`${url}/healthz`, { headers: { origin: ORIGIN } });
    expectCommonHeaders(ok.headers, 'GET /healthz');
    const refused = await fetch(`${url}/poll?streams=a`, { headers: { origin: ORIGIN } });
    expect(refused.status).to.equal(401);
    expectCommonHeaders(refused.headers, 'a 401');
    const preflight = await fetch(`${url}/send`, { method: 'OPTIONS', headers: { origin: ORIGIN, 'access-control-request-method': 'POST' } });
    expect(preflight.status).to.equal(204);
    expectCommonHeaders(preflight.headers, 'a preflight');
    expect(preflight.headers.get('access-control-allow-methods')).to.include('POST');
    expect(preflight.headers.get('access-control-expose-headers')).to.equal(null);
  });

  it('an event stream carries them in its head', async function () {
    const headers = await new Promise<IncomingHttpHeaders>((resolve, reject) => {
      const req = httpRequest(`${url}/sse?streams=${uniqueStream('head')}`, { headers: { authorization: AUTH, origin: ORIGIN } }, (res) => {
        expect(res.statusCode).to.equal(200);
        resolve(res.headers);
        req.destroy();
      });
      req.on('error', (err) => ((err as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(err)));
      req.end();
    });
    expect(headers['content-type']).to.include('text/event-stream');
    expectCommonHeaders(headers, 'an event stream');
  });

  it('keeps GET and HEAD answers out of every cache, and a POST answer out of those that read Cache-Control', async function () {
    const stream = uniqueStream('head');
    const triple = (res: Response) => [res.headers.get('cache-control'), res.headers.get('pragma'), res.headers.get('expires')];
    const polled = await fetch(`${url}/poll?streams=${stream}&timeout=0`, { headers: { authorization: AUTH } });
    expect(triple(polled), 'GET /poll').to.deep.equal(['no-cache, no-store, must-revalidate', 'no-cache', '0']);
    const headed = await fetch(`${url}/healthz`, { method: 'HEAD' });
    expect(triple(headed), 'HEAD /healthz').to.deep.equal(['no-cache, no-store, must-revalidate', 'no-cache', '0']);
    const refused = await fetch(`${url}/poll?streams=a`);
    expect(triple(refused), 'a refused GET').to.deep.equal(['no-cache, no-store, must-revalidate', 'no-cache', '0']);
    // HTTP/1.0 caches and old IE, which ignore Cache-Control, never keep what a POST fetched.
    const sent = await fetch(`${url}/send`, { method: 'POST', headers: { authorization: AUTH, 'content-type': 'application/json' }, body: JSON.stringify({ stream, data: 1 }) });
    expect(sent.status).to.equal(200);
    expect(triple(sent), 'POST /send').to.deep.equal(['no-cache, no-store, must-revalidate', null, null]);
    const posted = await fetch(`${url}/poll`, { method: 'POST', headers: { authorization: AUTH, 'content-type': 'application/json' }, body: JSON.stringify({ streams: [stream], since: 'earliest', timeout: 0 }) });
    expect(posted.status).to.equal(200);
    expect(triple(posted), 'POST /poll').to.deep.equal(['no-cache, no-store, must-revalidate', null, null]);
  });
});
