/**
 * The fast path (lib/http/fast-path.ts) must answer exactly as the Koa app does: the same status,
 * the same headers in the same order, the same body, for successes and for every kind of error.
 * Two gateways with the same config, one with `server.fastPath: false`, get the same requests.
 */
import { request as httpRequest } from 'node:http';
import { expect } from 'chai';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { waitFor } from '../support/wait.js';

interface Raw {
  status: number;
  headers: [string, string][];
  body: string;
}

interface Case {
  name: string;
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
}

/** The answer; with `until`, only the body up to that text (an event stream), then the connection is dropped. */
function exchange(url: string, c: Case, until?: string): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${url}${c.path}`, { method: c.method, headers: c.headers, agent: false }, (res) => {
      let body = '';
      const done = () => {
        const headers: [string, string][] = [];
        for (let i = 0; i < res.rawHeaders.length; i += 2) headers.push([res.rawHeaders[i]!, res.rawHeaders[i + 1]!]);
        resolve({ status: res.statusCode!, headers, body });
      };
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
        if (until && body.includes(until)) {
          done();
          req.destroy();
        }
      });
      res.on('end', done);
    });
    req.on('error', reject);
    req.end(c.body);
  });
}

/** What may differ between two answers: the date, generated request ids, message times and cursors (each store picks its own epochs). */
function normalize(r: Raw): Raw {
  return {
    status: r.status,
    headers: r.headers
      .filter(([name]) => name.toLowerCase() !== 'date')
      .map(([name, value]) => [name, name.toLowerCase() === 'x-request-id' && value.length === 36 ? '<generated>' : value]),
    body: r.body.replace(/"ts":\d+/g, '"ts":0').replace(/"cursor":"[A-Za-z0-9_-]+"/g, '"cursor":"<cursor>"').replace(/^id: [A-Za-z0-9_-]+$/gm, 'id: <cursor>'),
  };
}

describe('fast path: the same answers as the Koa app', function () {
  let fast: TestGateway;
  let koa: TestGateway;
  let key: string;
  let reader: string;
  const config = { cors: { origins: ['https://app.example.com'], maxAgeSeconds: 600 }, jsonp: { enabled: true }, limits: { bodyBytes: 2048, dataBytes: 1024 } };

  before(async function () {
    fast = await startGateway(config);
    koa = await startGateway({ ...config, server: { fastPath: false } });
    key = `Bearer ${fast.apiKey}`;
    // Same secret on both, so a token minted by one is valid on the other.
    reader = `Bearer ${await fast.token({ sub: 'reader', streams: ['room:*'] })}`;
  });
  after(async function () {
    await Promise.all([fast?.shutdown(), koa?.shutdown()]);
  });

  const json = { 'content-type': 'application/json' };
  const cases = (): Case[] => [
    { name: 'poll, nothing new', method: 'GET', path: '/poll?streams=room:a&timeout=0', headers: { authorization: key } },
    { name: 'poll by POST', method: 'POST', path: '/poll', headers: { authorization: key, ...json }, body: '{"streams":["room:a"],"timeout":0}' },
    { name: 'send with an id', method: 'POST', path: '/send', headers: { authorization: key, ...json }, body: '{"stream":"room:a","id":"m1","data":{"x":1}}' },
    { name: 'send the same id again', method: 'POST', path: '/send', headers: { authorization: key, ...json }, body: '{"stream":"room:a","id":"m1","data":{"x":1}}' },
    { name: 'poll from the oldest', method: 'GET', path: '/poll?streams=room:a&since=earliest&timeout=0', headers: { authorization: reader } },
    { name: 'poll without credentials', method: 'GET', path: '/poll?streams=room:a&timeout=0' },
    { name: 'poll with a malformed Authorization', method: 'GET', path: '/poll?streams=room:a&timeout=0', headers: { authorization: 'Basic abc' } },
    { name: 'poll of a forbidden stream', method: 'GET', path: '/poll?streams=secret&timeout=0', headers: { authorization: reader } },
    { name: 'poll of a bad stream name', method: 'GET', path: '/poll?streams=bad%20name&timeout=0', headers: { authorization: key } },
    { name: 'poll with a bad timeout', method: 'GET', path: '/poll?streams=room:a&timeout=abc', headers: { authorization: key } },
    { name: 'poll with a repeated cursor', method: 'GET', path: '/poll?streams=room:a&cursor=x&cursor=y', headers: { authorization: key } },
    { name: 'poll with a forged cursor', method: 'GET', path: '/poll?streams=room:a&cursor=AAAAAAAAAAAAAAAAAAAAAAAAAAA&timeout=0', headers: { authorization: key } },
    { name: 'poll by POST, malformed JSON', method: 'POST', path: '/poll', headers: { authorization: key, ...json }, body: '{"streams":' },
    { name: 'poll by POST, a JSON array', method: 'POST', path: '/poll', headers: { authorization: key, ...json }, body: '[1]' },
    { name: 'poll by POST, oversized', method: 'POST', path: '/poll', headers: { authorization: key, ...json }, body: `{"streams":"${'a'.repeat(4000)}"}` },
    { name: 'poll by POST, wrong type', method: 'POST', path: '/poll', headers: { authorization: key, 'content-type': 'text/xml' }, body: '<x/>' },
    { name: 'poll over XDomainRequest without credentials', method: 'GET', path: '/poll?streams=room:a&timeout=0&transport=xdr' },
    { name: 'poll over XDomainRequest, text/plain body', method: 'POST', path: '/poll?transport=xdr', headers: { 'content-type': 'text/plain' }, body: `{"streams":"room:a","timeout":0,"token":"${fast.apiKey}"}` },
    { name: 'JSONP poll', method: 'GET', path: `/poll?streams=room:a&since=earliest&timeout=0&callback=cb.x&token=${fast.apiKey}` },
    { name: 'JSONP poll, error in the callback', method: 'GET', path: '/poll?streams=room:a&timeout=0&callback=cb' },
    { name: 'JSONP with a hostile callback', method: 'GET', path: '/poll?streams=room:a&timeout=0&callback=alert(1)' },
    { name: 'poll from an allowed origin', method: 'GET', path: '/poll?streams=room:a&timeout=0', headers: { authorization: key, origin: 'https://app.example.com' } },
    { name: 'poll from another origin', method: 'GET', path: '/poll?streams=room:a&timeout=0', headers: { authorization: key, origin: 'https://evil.example.com' } },
    { name: 'a request id of our own', method: 'GET', path: '/poll?streams=room:a&timeout=0', headers: { authorization: key, 'x-request-id': 'abc-123' } },
    { name: 'a hostile request id', method: 'GET', path: '/poll?streams=room:a&timeout=0', headers: { authorization: key, 'x-request-id': 'a b<script>' } },
    { name: 'send without a body', method: 'POST', path: '/send', headers: { authorization: key, ...json } },
    { name: 'send without data', method: 'POST', path: '/send', headers: { authorization: key, ...json }, body: '{"stream":"room:a"}' },
    { name: 'send as a reader', method: 'POST', path: '/send', headers: { authorization: reader, ...json }, body: '{"stream":"room:a","data":1}' },
    { name: 'send with a __proto__ key', method: 'POST', path: '/send', headers: { authorization: key, ...json }, body: '{"__proto__":{"stream":"room:a"},"data":1}' },
    { name: 'send over XDomainRequest, refused', method: 'POST', path: '/send?transport=xdr', headers: { 'content-type': 'text/plain' }, body: '{"stream":"room:a","data":1}' },
    { name: 'send by GET (Koa: 405)', method: 'GET', path: '/send', headers: { authorization: key } },
    { name: 'poll by PUT (Koa: 405)', method: 'PUT', path: '/poll', headers: { authorization: key } },
    { name: 'poll by HEAD (Koa)', method: 'HEAD', path: '/poll?streams=room:a&timeout=0', headers: { authorization: key } },
    { name: 'a CORS preflight (Koa)', method: 'OPTIONS', path: '/send', headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST' } },
    { name: 'SSE without credentials', method: 'GET', path: '/sse?streams=room:a' },
    { name: 'SSE without credentials, from an allowed origin', method: 'GET', path: '/sse?streams=room:a', headers: { origin: 'https://app.example.com' } },
    { name: 'SSE of a forbidden stream', method: 'GET', path: '/sse?streams=secret', headers: { authorization: reader } },
    { name: 'SSE with a bad since', method: 'GET', path: '/sse?streams=room:a&since=yesterday', headers: { authorization: reader } },
    { name: 'SSE with a forged cursor', method: 'GET', path: '/sse?streams=room:a&cursor=AAAAAAAAAAAAAAAAAAAAAAAAAAA', headers: { authorization: reader } },
    { name: 'SSE with a forged Last-Event-ID', method: 'GET', path: '/sse?streams=room:a', headers: { authorization: reader, 'last-event-id': 'nope' } },
    { name: 'SSE with a repeated token', method: 'GET', path: `/sse?streams=room:a&token=${fast.apiKey}&token=x` },
    { name: 'SSE of too many streams', method: 'GET', path: `/sse?streams=${Array.from({ length: 60 }, (_, i) => `room:${i}`).join(',')}`, headers: { authorization: reader } },
    { name: 'SSE by POST (Koa: 405)', method: 'POST', path: '/sse?streams=room:a', headers: { authorization: reader } },
    { name: 'SSE by HEAD (Koa)', method: 'HEAD', path: '/sse?streams=room:a', headers: { authorization: reader } },
  ];

  it('answers every case with the same status, headers (in order) and body', async function () {
    for (const c of cases()) {
      const [a, b] = [normalize(await exchange(fast.url, c)), normalize(await exchange(koa.url, c))];
      expect(a, c.name).to.deep.equal(b);
    }
  });

  it('opens the same event stream: status, headers (in order), the messages and the ready event', async function () {
    const open: Case = { name: 'SSE', method: 'GET', path: '/sse?streams=room:a&since=earliest', headers: { authorization: reader, 'x-request-id': 'sse-1' } };
    const [a, b] = [normalize(await exchange(fast.url, open, 'event: ready')), normalize(await exchange(koa.url, open, 'event: ready'))];
    expect(a.body).to.match(/^retry: \d+\n\nid: <cursor>\ndata: \{"stream":"room:a","seq":1,"id":"m1"/);
    expect(a).to.deep.equal(b);
  });

  it('is what serves GET|POST /poll, POST /send and GET /sse, and only those (GET /stats counts it)', async function () {
    const served = async (gw: TestGateway) => {
      const r = await exchange(gw.url, { name: 'stats', method: 'GET', path: '/stats', headers: { authorization: key } });
      return JSON.parse(r.body).fastPathRequests as number;
    };
    const [fast0, koa0] = [await served(fast), await served(koa)];
    for (const gw of [fast, koa]) {
      await exchange(gw.url, { name: 'poll', method: 'GET', path: '/poll?streams=room:b&timeout=0', headers: { authorization: key } });
      await exchange(gw.url, { name: 'send', method: 'POST', path: '/send', headers: { authorization: key, ...json }, body: '{"stream":"room:b","data":1}' });
      await exchange(gw.url, { name: 'preflight', method: 'OPTIONS', path: '/send', headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST' } });
      await exchange(gw.url, { name: 'health', method: 'GET', path: '/healthz' });
      await exchange(gw.url, { name: 'sse', method: 'GET', path: '/sse?streams=room:b', headers: { authorization: key } }, 'event: ready');
    }
    expect((await served(fast)) - fast0).to.equal(3);
    expect((await served(koa)) - koa0).to.equal(0);
  });

  for (const path of ['fast path', 'Koa']) {
    it(`answers a parked poll when a message arrives, and while draining with Connection: close (${path})`, async function () {
      const gw = await startGateway(path === 'Koa' ? { ...config, server: { fastPath: false } } : config);
      try {
        const parked = exchange(gw.url, { name: 'park', method: 'GET', path: '/poll?streams=room:c&timeout=20', headers: { authorization: key } });
        await waitFor(() => gw.longPolls.size === 1, 'the poll to park');
        await exchange(gw.url, { name: 'send', method: 'POST', path: '/send', headers: { authorization: key, ...json }, body: '{"stream":"room:c","id":"c1","data":1}' });
        const answer = await parked;
        expect(answer.status).to.equal(200);
        expect(JSON.parse(answer.body).messages.map((m: { id: string }) => m.id)).to.deep.equal(['c1']);

        const held = exchange(gw.url, { name: 'park', method: 'GET', path: '/poll?streams=room:d&timeout=20', headers: { authorization: key } });
        await waitFor(() => gw.longPolls.size === 1, 'the poll to park');
        const down = gw.shutdown();
        const drained = await held;
        expect(drained.status).to.equal(200);
        expect(drained.headers.find(([n]) => n.toLowerCase() === 'connection')?.[1]).to.equal('close');
        await down;
      } finally {
        await gw.shutdown();
      }
    });
  }

  it('answers a parked JSONP poll that times out the same on both paths', async function () {
    const c: Case = { name: 'JSONP timeout', method: 'GET', path: `/poll?streams=room:e&timeout=0.2&callback=cb&token=${fast.apiKey}`, headers: { 'x-request-id': 'held-1' } };
    const [a, b] = [normalize(await exchange(fast.url, c)), normalize(await exchange(koa.url, c))];
    expect(a.body).to.match(/^\/\*\*\/cb\(\{"messages":\[\],"cursor":"<cursor>"\}\);$/);
    expect(a).to.deep.equal(b);
  });
});
