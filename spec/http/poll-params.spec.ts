import { expect } from 'chai';
import request from 'supertest';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { expectError, expectNoStore, uniqueStream } from '../support/http.js';

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

describe('GET and POST /poll parameters', function () {
  let gw: TestGateway;
  let jsonp: TestGateway;
  before(async function () {
    // Parameters, not rates: this file polls faster than the default per-IP poll rate allows
    // (spec/limits covers that rate), and how many of its tests fit in a second is the machine's say.
    const noPollRate = { rateLimits: { pollsPerIpPerSecond: 0 } };
    [gw, jsonp] = await Promise.all([startGateway(noPollRate), startGateway({ ...noPollRate, jsonp: { enabled: true } })]);
  });
  after(async function () {
    await Promise.all([gw?.shutdown(), jsonp?.shutdown()]);
  });

  /** GET /poll with the API key and a raw query string (so repeated and odd parameters stay as written). */
  const get = (query: string, g: TestGateway = gw) => request(g.url).get(`/poll?${query}`).set('Authorization', `Bearer ${g.apiKey}`);
  const post = (body: unknown, g: TestGateway = gw) => request(g.url).post('/poll').set('Authorization', `Bearer ${g.apiKey}`).send(body as object);
  const sendTo = async (stream: string, data: unknown) => {
    const res = await request(gw.url).post('/send').set('Authorization', `Bearer ${gw.apiKey}`).send({ stream, data });
    expect(res.status, res.text).to.equal(200);
  };

  describe('answers', function () {
    it('timeout=0 answers at once with 200 {"messages":[],"cursor"} and no-store', async function () {
      const res = await get(`streams=${uniqueStream()}&timeout=0`);
      expect(res.status).to.equal(200);
      expect(res.headers['content-type']).to.match(/^application\/json/);
      expectNoStore(res);
      expect(Object.keys(res.body)).to.deep.equal(['messages', 'cursor']);
      expect(res.body.messages).to.deep.equal([]);
      expect(res.body.cursor).to.match(/^[A-Za-z0-9_-]+$/);
    });

    it('gives messages after the cursor, and accepts the cursor back', async function () {
      const stream = uniqueStream();
      const first = await get(`streams=${stream}&timeout=0`);
      await sendTo(stream, 'a');
      await sendTo(stream, 'b');
      const second = await get(`streams=${stream}&timeout=0&cursor=${first.body.cursor}`);
      expect(second.body.messages.map((m: { data: unknown }) => m.data)).to.deep.equal(['a', 'b']);
      const third = await get(`streams=${stream}&timeout=0&cursor=${second.body.cursor}`);
      expect(third.body.messages).to.deep.equal([]);
    });

    it('accepts POST with a JSON body, also sent as text/plain with the token in the body', async function () {
      const stream = uniqueStream('room:');
      await sendTo(stream, 'x');
      const res = await post({ streams: [stream], since: 'earliest', timeout: 0 });
      expect(res.status, res.text).to.equal(200);
      expect(res.body.messages).to.have.length(1);
      const token = await gw.token({ sub: 'alice', streams: ['room:*'] });
      const plain = await request(gw.url).post('/poll').set('Content-Type', 'text/plain').send(JSON.stringify({ streams: stream, since: 'earliest', timeout: '0', limit: '10', token }));
      expect(plain.status, plain.text).to.equal(200);
      expect(plain.body.messages[0].data).to.equal('x');
      expectNoStore(plain);
    });

    it('reads null in a POST body as a parameter not given (a first poll with "cursor": null)', async function () {
      const stream = uniqueStream();
      await sendTo(stream, 'kept');
      const res = await post({ streams: stream, since: 'earliest', cursor: null, timeout: 0, limit: null, conn: null });
      expect(res.status, res.text).to.equal(200);
      expect(res.body.messages.map((m: { data: unknown }) => m.data)).to.deep.equal(['kept']);
      // Without a header, a token of null is no credential at all (not a token of the wrong type).
      const anonymous = await request(gw.url).post('/poll').send({ streams: stream, timeout: 0, token: null });
      expect(expectError(anonymous, 401, 'unauthorized').message).to.include('credentials required');
      // since null is the default, "now": nothing from before, a cursor at the end.
      const fromNow = await post({ streams: stream, since: null, timeout: 0 });
      expect(fromNow.status, fromNow.text).to.equal(200);
      expect(fromNow.body.messages).to.deep.equal([]);
      // A required parameter is still required.
      expectError(await post({ streams: null, timeout: 0 }), 400, 'bad_request');
    });

    it('answers HEAD like GET, without a body', async function () {
      const res = await request(gw.url).head(`/poll?streams=${uniqueStream()}&timeout=0`).set('Authorization', `Bearer ${gw.apiKey}`);
      expect(res.status).to.equal(200);
      expect(res.headers['content-type']).to.match(/^application\/json/);
    });

    it('accepts repeated streams parameters and exactly poll.maxStreams streams', async function () {
      const [a, b] = [uniqueStream(), uniqueStream()];
      expect((await get(`streams=${a}&streams=${b}&timeout=0`)).status).to.equal(200);
      const fifty = Array.from({ length: 50 }, (_, i) => `s${i}`).join(',');
      expect((await get(`streams=${fifty}&timeout=0`)).status).to.equal(200);
    });

    it('accepts fractional timeouts and floors a fractional limit', async function () {
      const stream = uniqueStream();
      await sendTo(stream, 1);
      await sendTo(stream, 2);
      const res = await get(`streams=${stream}&since=earliest&timeout=0.0&limit=1.9`);
      expect(res.status).to.equal(200);
      expect(res.body.messages).to.have.length(1);
    });
  });

  describe('validation (400 bad_request)', function () {
    const cases: [string, string][] = [
      ['streams missing', 'timeout=0'],
      ['streams empty', 'streams=&timeout=0'],
      ['streams of empty names', 'streams=,&timeout=0'],
      ['a trailing comma', 'streams=a,&timeout=0'],
      ['more than poll.maxStreams streams', `streams=${Array.from({ length: 51 }, (_, i) => `s${i}`).join(',')}&timeout=0`],
      ['a name with a slash', 'streams=room:1/../x&timeout=0'],
      ['a name with a space', 'streams=room%201&timeout=0'],
      ['a look-alike unicode name', `streams=${encodeURIComponent('rооm:1')}&timeout=0`],
      ['a 201-character name', `streams=${'x'.repeat(201)}&timeout=0`],
      ['a negative timeout', 'streams=a&timeout=-1'],
      ['a timeout above poll.maxTimeoutSeconds', 'streams=a&timeout=56'],
      ['a non-numeric timeout', 'streams=a&timeout=abc'],
      ['an exponent timeout', 'streams=a&timeout=1e1'],
      ['a hex timeout', 'streams=a&timeout=0x1'],
      ['limit 0', 'streams=a&timeout=0&limit=0'],
      ['limit above poll.maxLimit', 'streams=a&timeout=0&limit=1001'],
      ['a negative limit', 'streams=a&timeout=0&limit=-5'],
      ['a non-numeric limit', 'streams=a&timeout=0&limit=ten'],
      ['a bad since', 'streams=a&timeout=0&since=yesterday'],
      ['a conn with a space', 'streams=a&timeout=0&conn=a%20b'],
      ['a 65-character conn', `streams=a&timeout=0&conn=${'c'.repeat(65)}`],
      ['a repeated timeout', 'streams=a&timeout=0&timeout=0'],
      ['a repeated limit', 'streams=a&timeout=0&limit=1&limit=2'],
      ['a repeated cursor', 'streams=a&timeout=0&cursor=x&cursor=y'],
      ['a repeated since', 'streams=a&timeout=0&since=now&since=now'],
      ['a repeated conn', 'streams=a&timeout=0&conn=a&conn=b'],
    ];
    for (const [what, query] of cases) {
      it(`refuses ${what}`, async function () {
        const res = await get(query);
        expectError(res, 400, 'bad_request');
        expectNoStore(res);
      });
    }

    it('refuses the same mistakes in a POST body', async function () {
      for (const body of [{}, { streams: [] }, { streams: 'a', timeout: -1 }, { streams: 'a', timeout: true }, { streams: 'a', timeout: [0] }, { streams: 'a', timeout: 0, limit: 0 }, { streams: 'a', timeout: 0, cursor: 5 }, { streams: 'a', timeout: 0, since: 1 }, { streams: 'a', timeout: 0, conn: 7 }, { streams: ['a', 5], timeout: 0 }, { streams: 'a', timeout: '' + 99 }]) {
        expectError(await post(body), 400, 'bad_request');
      }
    });

    it('refuses a POST body that is an array, malformed JSON, or a form', async function () {
      expectError(await post([{ streams: 'a' }]), 400, 'bad_request');
      expectError(await request(gw.url).post('/poll').set('Authorization', `Bearer ${gw.apiKey}`).type('json').send('{"streams":'), 400, 'bad_request');
      expectError(await request(gw.url).post('/poll').set('Authorization', `Bearer ${gw.apiKey}`).type('form').send('streams=a&timeout=0'), 415, 'unsupported_media_type');
    });
  });

  describe('cursors (400 invalid_cursor)', function () {
    let stream: string;
    let cursor: string;
    before(async function () {
      stream = uniqueStream();
      await sendTo(stream, 1);
      cursor = (await get(`streams=${stream}&since=earliest&timeout=0`)).body.cursor;
    });

    it('refuses a cursor with any one character changed', async function () {
      for (let i = 0; i < cursor.length; i++) {
        const c = BASE64URL[(BASE64URL.indexOf(cursor[i]!) + 1) % 64]!;
        expectError(await get(`streams=${stream}&timeout=0&cursor=${cursor.slice(0, i)}${c}${cursor.slice(i + 1)}`), 400, 'invalid_cursor');
      }
    });

    it('refuses a truncated cursor, garbage, and a cursor of another secret', async function () {
      expectError(await get(`streams=${stream}&timeout=0&cursor=${cursor.slice(0, -1)}`), 400, 'invalid_cursor');
      expectError(await get(`streams=${stream}&timeout=0&cursor=${cursor.slice(0, 5)}`), 400, 'invalid_cursor');
      expectError(await get(`streams=${stream}&timeout=0&cursor=%3Cscript%3E`), 400, 'invalid_cursor');
      expectError(await get(`streams=${stream}&timeout=0&cursor=${'A'.repeat(9000)}`), 400, 'invalid_cursor');
      const other = await startGateway({ auth: { secret: 'another-secret-0123456789abcdefghijklmno' } });
      try {
        const foreign = (await get(`streams=${stream}&timeout=0`, other)).body.cursor;
        expectError(await get(`streams=${stream}&timeout=0&cursor=${foreign}`), 400, 'invalid_cursor');
      } finally {
        await other.shutdown();
      }
    });

    it('refuses a tampered cursor in a POST body too', async function () {
      expectError(await post({ streams: [stream], timeout: 0, cursor: cursor.slice(1) }), 400, 'invalid_cursor');
    });
  });

  describe('auth', function () {
    it('401 without credentials, with a bad key, or a non-Bearer scheme', async function () {
      expectError(await request(gw.url).get('/poll?streams=a&timeout=0'), 401, 'unauthorized');
      expectError(await request(gw.url).get('/poll?streams=a&timeout=0').set('Authorization', 'Bearer nope-nope-nope-nope'), 401, 'unauthorized');
      expectError(await request(gw.url).get('/poll?streams=a&timeout=0').set('Authorization', `Basic ${gw.apiKey}`), 401, 'unauthorized');
      expectError(await request(gw.url).get('/poll?streams=a&timeout=0&token=garbage'), 401, 'unauthorized');
      expectError(await request(gw.url).get('/poll?streams=a&timeout=0&token=a&token=b'), 400, 'bad_request');
    });

    it('403 when the token streams patterns do not cover every stream; room:* covers room:1, not roomx', async function () {
      const token = await gw.token({ sub: 'alice', streams: ['room:*', 'user:alice'] });
      const poll = (streams: string) => request(gw.url).get(`/poll?streams=${streams}&timeout=0&token=${token}`);
      expect((await poll('room:1,user:alice')).status).to.equal(200);
      expect((await poll('room:')).status).to.equal(200);
      expectError(await poll('roomx'), 403, 'forbidden');
      expectError(await poll('room:1,user:bob'), 403, 'forbidden');
      expectError(await poll('user:alice2'), 403, 'forbidden');
      const header = await request(gw.url).get('/poll?streams=secret&timeout=0').set('Authorization', `Bearer ${token}`);
      expectError(header, 403, 'forbidden');
      expectNoStore(header);
    });
  });

  describe('JSONP', function () {
    it('wraps the answer as /**/cb(...); with application/javascript and nosniff', async function () {
      const res = await get(`streams=${uniqueStream()}&timeout=0&callback=cb`, jsonp);
      expect(res.status).to.equal(200);
      expect(res.headers['content-type']).to.match(/^application\/javascript/);
      expect(res.headers['x-content-type-options']).to.equal('nosniff');
      expectNoStore(res);
      expect(res.text).to.match(/^\/\*\*\/cb\(\{"messages":\[\],"cursor":"[A-Za-z0-9_-]+"\}\);$/);
    });

    it('accepts dotted callback paths', async function () {
      const res = await get(`streams=${uniqueStream()}&timeout=0&callback=$.jsonp._cb1`, jsonp);
      expect(res.text.startsWith('/**/$.jsonp._cb1(')).to.equal(true);
    });

    it('escapes U+2028 and U+2029 in messages', async function () {
      const stream = uniqueStream();
      const res1 = await request(jsonp.url).post('/send').set('Authorization', `Bearer ${jsonp.apiKey}`).send({ stream, data: 'a\u2028b\u2029c' });
      expect(res1.status).to.equal(200);
      const res = await get(`streams=${stream}&since=earliest&timeout=0&callback=cb`, jsonp);
      expect(res.text).not.to.match(/[\u2028\u2029]/);
      expect(res.text).to.include('a\\u2028b\\u2029c');
      const json = res.text.slice('/**/cb('.length, -2);
      expect(JSON.parse(json).messages[0].data).to.equal('a\u2028b\u2029c');
    });

    it('renders errors inside the callback with status 200', async function () {
      const res = await get('timeout=0&callback=cb', jsonp);
      expect(res.status).to.equal(200);
      expect(res.headers['content-type']).to.match(/^application\/javascript/);
      const m = /^\/\*\*\/cb\((.*)\);$/.exec(res.text);
      expect(JSON.parse(m![1]!).error.code).to.equal('bad_request');
      const unauth = await request(jsonp.url).get('/poll?streams=a&timeout=0&callback=cb');
      expect(unauth.status).to.equal(200);
      expect(unauth.text).to.include('"code":"unauthorized"');
    });

    for (const bad of ['alert(1)//', '<script>', 'x'.repeat(1000), 'café', '1abc', 'a..b', 'a.', '', 'a-b', 'a;b', 'a.b.c.d.e']) {
      it(`refuses callback ${JSON.stringify(bad.length > 20 ? `${bad.slice(0, 8)}…(${bad.length})` : bad)} with a plain JSON 400`, async function () {
        const res = await get(`streams=a&timeout=0&callback=${encodeURIComponent(bad)}`, jsonp);
        expectError(res, 400, 'bad_request');
        expect(res.text).not.to.include(bad || '/**/');
      });
    }

    it('refuses a repeated callback', async function () {
      expectError(await get('streams=a&timeout=0&callback=a&callback=b', jsonp), 400, 'bad_request');
    });

    it('answers 400 when JSONP is disabled', async function () {
      const res = await get(`streams=${uniqueStream()}&timeout=0&callback=cb`);
      expectError(res, 400, 'bad_request');
    });
  });

  describe('transport=xdr', function () {
    it('returns errors with status 200 and an error body', async function () {
      for (const [query, code] of [['streams=a&timeout=-1', 'bad_request'], ['streams=a&timeout=0&cursor=zzzz', 'invalid_cursor']] as const) {
        const res = await get(`${query}&transport=xdr`);
        expect(res.status).to.equal(200);
        expect(res.body).to.deep.equal({ error: { code, message: res.body.error.message } });
      }
      const unauth = await request(gw.url).post('/poll?transport=xdr').set('Content-Type', 'text/plain').send(JSON.stringify({ streams: 'a', timeout: 0 }));
      expect(unauth.status).to.equal(200);
      expect(unauth.body.error.code).to.equal('unauthorized');
    });

    it('answers success as usual', async function () {
      const res = await get(`streams=${uniqueStream()}&timeout=0&transport=xdr`);
      expect(res.status).to.equal(200);
      expect(res.body.messages).to.deep.equal([]);
    });
  });
});
