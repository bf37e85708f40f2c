import { request as httpRequest } from 'node:http';
import { expect } from 'chai';
import request from 'supertest';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { expectError, expectNoStore, retained, uniqueStream } from '../support/http.js';

const BODY_BYTES = 4096;
const DATA_BYTES = 256;

/** Sends raw bytes with headers of our choosing; resolves with the answer as soon as it arrives. */
function rawPost(url: string, headers: Record<string, string>, chunks: Buffer[], end: boolean): Promise<{ status: number; body: string; endedRequest: boolean }> {
  return new Promise((resolve, reject) => {
    let ended = false;
    const req = httpRequest(`${url}/send`, { method: 'POST', headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        resolve({ status: res.statusCode!, body, endedRequest: ended });
        req.destroy();
      });
    });
    // The server may close while we still write: that is the point of some of these tests.
    req.on('error', (err: NodeJS.ErrnoException) => (err.code === 'EPIPE' || err.code === 'ECONNRESET' ? undefined : reject(err)));
    for (const c of chunks) req.write(c);
    if (end) {
      ended = true;
      req.end();
    } else {
      req.flushHeaders();
    }
  });
}

describe('POST /send', function () {
  let gw: TestGateway;
  let small: TestGateway;
  before(async function () {
    gw = await startGateway();
    small = await startGateway({ limits: { bodyBytes: BODY_BYTES, dataBytes: DATA_BYTES, batchSize: 3, streamsPerSend: 3 } });
  });
  after(async function () {
    await Promise.all([gw?.shutdown(), small?.shutdown()]);
  });

  const send = (body: unknown, g: TestGateway = gw) => request(g.url).post('/send').set('Authorization', `Bearer ${g.apiKey}`).send(body as object);

  describe('forms', function () {
    it('appends one message and answers its stream, seq and a generated id', async function () {
      const stream = uniqueStream();
      const res = await send({ stream, data: { text: 'hi' } });
      expect(res.status, res.text).to.equal(200);
      expect(res.headers['content-type']).to.match(/^application\/json/);
      expectNoStore(res);
      expect(res.body.results).to.have.length(1);
      const [r] = res.body.results;
      expect(Object.keys(r).sort()).to.deep.equal(['id', 'seq', 'stream']);
      expect(r.stream).to.equal(stream);
      expect(r.seq).to.equal(1);
      expect(r.id).to.match(/^[A-Za-z0-9_-]{21}$/);
      const messages = await retained(gw.url, gw.apiKey, stream);
      expect(messages).to.have.length(1);
      expect(messages[0]).to.include({ stream, seq: 1, id: r.id });
      expect(messages[0]!.data).to.deep.equal({ text: 'hi' });
    });

    it('numbers a stream 1, 2, 3 and keeps any JSON value as data', async function () {
      const stream = uniqueStream();
      const values = [null, false, 0, '', [1, 'two'], { nested: { deep: [true] } }, 'ünïcødé \u2028'];
      for (const [i, data] of values.entries()) {
        const res = await send({ stream, data });
        expect(res.body.results[0].seq).to.equal(i + 1);
      }
      expect((await retained(gw.url, gw.apiKey, stream)).map((m) => m.data)).to.deep.equal(values);
    });

    it('fans one message out to several streams, results in the order given', async function () {
      const [a, b, c] = [uniqueStream(), uniqueStream(), uniqueStream()];
      await send({ stream: b, data: 'first in b' });
      const res = await send({ streams: [c, a, b], data: 'fan', id: 'fan-1' });
      expect(res.status, res.text).to.equal(200);
      expect(res.body.results).to.deep.equal([
        { stream: c, seq: 1, id: 'fan-1' },
        { stream: a, seq: 1, id: 'fan-1' },
        { stream: b, seq: 2, id: 'fan-1' },
      ]);
      for (const s of [a, b, c]) expect((await retained(gw.url, gw.apiKey, s)).at(-1)!.data).to.equal('fan');
    });

    it('sends a fan-out given once per stream when a stream is listed twice', async function () {
      const a = uniqueStream();
      const res = await send({ streams: [a, a], data: 1 });
      expect(res.body.results).to.have.length(1);
      expect(await retained(gw.url, gw.apiKey, a)).to.have.length(1);
    });

    it('appends a batch in order, results in request order', async function () {
      const [a, b] = [uniqueStream(), uniqueStream()];
      const res = await send({
        messages: [
          { stream: a, data: 'a1' },
          { stream: b, data: 'b1', id: 'b-one' },
          { streams: [a, b], data: 'ab' },
          { stream: a, data: 'a3' },
        ],
      });
      expect(res.status, res.text).to.equal(200);
      expect(res.body.results.map((r: { stream: string; seq: number }) => [r.stream, r.seq])).to.deep.equal([[a, 1], [b, 1], [a, 2], [b, 2], [a, 3]]);
      expect(res.body.results[1].id).to.equal('b-one');
      expect((await retained(gw.url, gw.apiKey, a)).map((m) => m.data)).to.deep.equal(['a1', 'ab', 'a3']);
      expect((await retained(gw.url, gw.apiKey, b)).map((m) => m.data)).to.deep.equal(['b1', 'ab']);
    });

    it('accepts a batch of exactly the limit', async function () {
      const stream = uniqueStream();
      const res = await send({ messages: Array.from({ length: 100 }, (_, i) => ({ stream, data: i })) });
      expect(res.status, res.text).to.equal(200);
      expect(res.body.results.at(-1).seq).to.equal(100);
    });

    it('accepts JSON sent as text/plain, and JSON with a charset', async function () {
      const stream = uniqueStream();
      const plain = await request(gw.url).post('/send').set('Authorization', `Bearer ${gw.apiKey}`).set('Content-Type', 'text/plain;charset=UTF-8').send(JSON.stringify({ stream, data: 1 }));
      expect(plain.status, plain.text).to.equal(200);
      const typed = await request(gw.url).post('/send').set('Authorization', `Bearer ${gw.apiKey}`).set('Content-Type', 'Application/JSON; charset=utf-8').send(JSON.stringify({ stream, data: 2 }));
      expect(typed.status, typed.text).to.equal(200);
      expect(await retained(gw.url, gw.apiKey, stream)).to.have.length(2);
    });
  });

  describe('idempotent ids', function () {
    it('answers a re-sent id with the original seq and duplicate: true, appending nothing', async function () {
      const stream = uniqueStream();
      await send({ stream, data: 'one', id: 'order-1' });
      await send({ stream, data: 'two' });
      const res = await send({ stream, data: 'one again', id: 'order-1' });
      expect(res.status).to.equal(200);
      expect(res.body.results).to.deep.equal([{ stream, seq: 1, id: 'order-1', duplicate: true }]);
      expect((await retained(gw.url, gw.apiKey, stream)).map((m) => m.data)).to.deep.equal(['one', 'two']);
    });

    it('deduplicates per stream in a fan-out', async function () {
      const [a, b] = [uniqueStream(), uniqueStream()];
      await send({ stream: a, data: 'x', id: 'fan-dup' });
      const res = await send({ streams: [a, b], data: 'x', id: 'fan-dup' });
      expect(res.body.results).to.deep.equal([
        { stream: a, seq: 1, id: 'fan-dup', duplicate: true },
        { stream: b, seq: 1, id: 'fan-dup' },
      ]);
    });

    it('deduplicates an id repeated inside one batch', async function () {
      const stream = uniqueStream();
      const res = await send({ messages: [{ stream, data: 1, id: 'same' }, { stream, data: 2, id: 'same' }] });
      expect(res.body.results).to.deep.equal([
        { stream, seq: 1, id: 'same' },
        { stream, seq: 1, id: 'same', duplicate: true },
      ]);
      expect(await retained(gw.url, gw.apiKey, stream)).to.have.length(1);
    });

    it('treats an id the gateway made as no idempotency key: naming it later sends a new message', async function () {
      const stream = uniqueStream();
      const made = (await send({ stream, data: 'first' })).body.results[0];
      // Only an id the sender chose makes a send idempotent: nobody retries with an id it never had.
      const named = await send({ stream, data: 'second', id: made.id });
      expect(named.body.results).to.deep.equal([{ stream, seq: 2, id: made.id }]);
      const retried = await send({ stream, data: 'second again', id: made.id });
      expect(retried.body.results).to.deep.equal([{ stream, seq: 2, id: made.id, duplicate: true }]);
      expect((await retained(gw.url, gw.apiKey, stream)).map((m) => m.data)).to.deep.equal(['first', 'second']);
    });
  });

  describe('errors', function () {
    /** Asserts the error and that the stream still holds nothing. */
    async function refusedAndNothingStored(res: request.Response, status: number, code: string, stream: string, g = gw) {
      expectError(res, status, code);
      expectNoStore(res);
      expect(await retained(g.url, g.apiKey, stream)).to.deep.equal([]);
    }

    const raw = (body: string | Buffer, type = 'application/json', g = gw) =>
      request(g.url).post('/send').set('Authorization', `Bearer ${g.apiKey}`).set('Content-Type', type).send(body);

    it('400 on malformed JSON', async function () {
      const stream = uniqueStream();
      await refusedAndNothingStored(await raw(`{"stream":"${stream}","data":`), 400, 'bad_request', stream);
    });

    it('400 on a body that is not valid UTF-8', async function () {
      const stream = uniqueStream();
      const body = Buffer.concat([Buffer.from(`{"stream":"${stream}","data":"`), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from('"}')]);
      // Raw bytes: superagent would serialize a Buffer as JSON.
      const res = await rawPost(gw.url, { 'Content-Type': 'application/json', Authorization: `Bearer ${gw.apiKey}` }, [body], true);
      expect(res.status).to.equal(400);
      expect(JSON.parse(res.body).error).to.deep.equal({ code: 'bad_request', message: 'request body is not valid UTF-8' });
      expect(await retained(gw.url, gw.apiKey, stream)).to.deep.equal([]);
    });

    it('400 on an empty or blank body', async function () {
      expectError(await raw(''), 400, 'bad_request');
      expectError(await raw('  \n'), 400, 'bad_request');
    });

    it('400 on a body that is an array, a string or null', async function () {
      const stream = uniqueStream();
      await refusedAndNothingStored(await raw(JSON.stringify([{ stream, data: 1 }])), 400, 'bad_request', stream);
      expectError(await raw('"text"'), 400, 'bad_request');
      expectError(await raw('null'), 400, 'bad_request');
    });

    it('takes JSON whatever the case and parameters of its Content-Type', async function () {
      for (const type of ['application/json; charset=utf-8', 'Application/JSON', ' application/json ;charset=UTF-8', 'text/plain;charset=UTF-8']) {
        const stream = uniqueStream();
        const res = await raw(JSON.stringify({ stream, data: type }), type);
        expect(res.status, type).to.equal(200);
        expect(await retained(gw.url, gw.apiKey, stream)).to.have.length(1);
      }
    });

    it('415 on form posts and other content types, so a cross-site form cannot publish', async function () {
      const stream = uniqueStream();
      for (const type of ['application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml', 'text/html']) {
        const body = type.startsWith('application/x-www') ? `stream=${stream}&data=1` : JSON.stringify({ stream, data: 1 });
        await refusedAndNothingStored(await raw(body, type), 415, 'unsupported_media_type', stream);
      }
    });

    it('413 on a body over limits.bodyBytes declared in Content-Length, before reading it', async function () {
      const stream = uniqueStream();
      const res = await rawPost(small.url, { 'Content-Type': 'application/json', 'Content-Length': String(10 * 1024 * 1024), Authorization: `Bearer ${small.apiKey}` }, [Buffer.from(`{"stream":"${stream}",`)], false);
      expect(res.status).to.equal(413);
      expect(res.endedRequest).to.equal(false);
      expect(JSON.parse(res.body).error.code).to.equal('payload_too_large');
      expect(await retained(small.url, small.apiKey, stream)).to.deep.equal([]);
    });

    it('413 on a chunked body (no Content-Length) as soon as it crosses the limit, while the client is still sending', async function () {
      const stream = uniqueStream();
      const head = Buffer.from(`{"stream":"${stream}","data":"`);
      const res = await rawPost(small.url, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked', Authorization: `Bearer ${small.apiKey}` }, [head, Buffer.alloc(BODY_BYTES, 'x')], false);
      expect(res.status).to.equal(413);
      expect(res.endedRequest, 'answered before the body ended').to.equal(false);
      expect(JSON.parse(res.body)).to.deep.equal({ error: { code: 'payload_too_large', message: `request body exceeds ${BODY_BYTES} bytes` } });
      expect(await retained(small.url, small.apiKey, stream)).to.deep.equal([]);
    });

    it('accepts a body of exactly limits.bodyBytes', async function () {
      const stream = uniqueStream();
      const skeleton = JSON.stringify({ stream, data: '' });
      const body = JSON.stringify({ stream, data: '' }).replace('""', `"${'x'.repeat(200)}"`) + ' '.repeat(BODY_BYTES - skeleton.length - 200);
      expect(Buffer.byteLength(body)).to.equal(BODY_BYTES);
      const res = await raw(body, 'application/json', small);
      expect(res.status, res.text).to.equal(200);
    });

    it('413 on data over limits.dataBytes, also inside a batch; data of exactly the limit is accepted', async function () {
      const stream = uniqueStream();
      const over = 'x'.repeat(DATA_BYTES - 1); // JSON quotes make it DATA_BYTES + 1
      await refusedAndNothingStored(await raw(JSON.stringify({ stream, data: over }), 'application/json', small), 413, 'payload_too_large', stream, small);
      await refusedAndNothingStored(await raw(JSON.stringify({ messages: [{ stream, data: 1 }, { stream, data: over }] }), 'application/json', small), 413, 'payload_too_large', stream, small);
      // Multi-byte characters count in bytes.
      await refusedAndNothingStored(await raw(JSON.stringify({ stream, data: 'é'.repeat(DATA_BYTES / 2) }), 'application/json', small), 413, 'payload_too_large', stream, small);
      const exact = await raw(JSON.stringify({ stream, data: 'x'.repeat(DATA_BYTES - 2) }), 'application/json', small);
      expect(exact.status, exact.text).to.equal(200);
    });

    it('400 when data is missing', async function () {
      const stream = uniqueStream();
      await refusedAndNothingStored(await send({ stream }), 400, 'bad_request', stream);
      await refusedAndNothingStored(await send({ messages: [{ stream, data: 1 }, { stream }] }), 400, 'bad_request', stream);
    });

    it('400 when both or neither of stream and streams are given', async function () {
      const stream = uniqueStream();
      await refusedAndNothingStored(await send({ stream, streams: [stream], data: 1 }), 400, 'bad_request', stream);
      expectError(await send({ data: 1 }), 400, 'bad_request');
      expectError(await send({ streams: [], data: 1 }), 400, 'bad_request');
      expectError(await send({ streams: 'x'.repeat(0), data: 1 }), 400, 'bad_request');
    });

    it('400 on bad stream names', async function () {
      const bad = ['', 'x'.repeat(201), 'room 1', 'room/1', 'room:1/../x', 'room:{1}', 'rооm:1' /* Cyrillic o */, 'room：1' /* fullwidth colon */, 'room:1\n', 'room:1\u0000', 'ﬁle', 'room,1', 42, null, ['room:1']];
      for (const name of bad) {
        expectError(await send({ stream: name, data: 1 }), 400, 'bad_request');
        expectError(await send({ streams: ['ok', name], data: 1 }), 400, 'bad_request');
      }
      expect(await retained(gw.url, gw.apiKey, 'ok')).to.deep.equal([]);
      const longest = await send({ stream: 'x'.repeat(200) + '', data: 1 });
      expect(longest.status).to.equal(200);
    });

    it('400 on bad ids', async function () {
      const stream = uniqueStream();
      for (const id of ['', 'x'.repeat(65), 'a b', 'a.b', 'ünï', 12, null, ['a']]) {
        await refusedAndNothingStored(await send({ stream, data: 1, id }), 400, 'bad_request', stream);
      }
      expect((await send({ stream, data: 1, id: 'x'.repeat(64) })).status).to.equal(200);
    });

    it('400 on a batch over the limit, an empty batch or messages that is not an array', async function () {
      const stream = uniqueStream();
      await refusedAndNothingStored(await send({ messages: Array.from({ length: 101 }, (_, i) => ({ stream, data: i })) }), 400, 'bad_request', stream);
      await refusedAndNothingStored(await send({ messages: Array.from({ length: 4 }, (_, i) => ({ stream, data: i })) }, small), 400, 'bad_request', stream, small);
      expectError(await send({ messages: [] }), 400, 'bad_request');
      expectError(await send({ messages: { stream, data: 1 } }), 400, 'bad_request');
      expectError(await send({ messages: [null] }), 400, 'bad_request');
      const bad = await send({ messages: [{ stream, data: 1 }, { stream, data: 2 }, { stream: 'bad name', data: 3 }] });
      expect(expectError(bad, 400, 'bad_request').message).to.include('messages[2]');
      expect(await retained(gw.url, gw.apiKey, stream)).to.deep.equal([]);
    });

    it('400 on a fan-out to more than limits.streamsPerSend streams', async function () {
      const streams = Array.from({ length: 4 }, () => uniqueStream());
      await refusedAndNothingStored(await send({ streams, data: 1 }, small), 400, 'bad_request', streams[0]!, small);
    });

    it('401 without credentials, with a bad API key, or with a non-Bearer scheme', async function () {
      const stream = uniqueStream();
      const body = JSON.stringify({ stream, data: 1 });
      await refusedAndNothingStored(await request(gw.url).post('/send').type('json').send(body), 401, 'unauthorized', stream);
      await refusedAndNothingStored(await request(gw.url).post('/send').set('Authorization', 'Bearer not-the-key-0123456789').type('json').send(body), 401, 'unauthorized', stream);
      await refusedAndNothingStored(await request(gw.url).post('/send').set('Authorization', `Basic ${Buffer.from(`x:${gw.apiKey}`).toString('base64')}`).type('json').send(body), 401, 'unauthorized', stream);
      await refusedAndNothingStored(await request(gw.url).post('/send').set('Authorization', `Token ${gw.apiKey}`).type('json').send(body), 401, 'unauthorized', stream);
      await refusedAndNothingStored(await request(gw.url).post('/send').set('Authorization', 'Bearer').type('json').send(body), 401, 'unauthorized', stream);
      // An Authorization header wins over the body: a bad header is not rescued by a good body token.
      await refusedAndNothingStored(await request(gw.url).post('/send').set('Authorization', 'Basic eDp5').send({ stream, data: 1, token: gw.apiKey }), 401, 'unauthorized', stream);
    });

    it('never repeats the credential in an error', async function () {
      const res = await request(gw.url).post('/send').set('Authorization', 'Bearer secret-looking-credential-xyz').send({ stream: 'a', data: 1 });
      expectError(res, 401, 'unauthorized');
      expect(res.text).not.to.include('secret-looking-credential-xyz');
    });
  });

  describe('client tokens', function () {
    it('lets a token send to streams matching its pub patterns, from the header or a body field', async function () {
      const stream = uniqueStream('room:');
      const token = await gw.token({ sub: 'alice', streams: ['room:*'], pub: ['room:*'] });
      const viaHeader = await request(gw.url).post('/send').set('Authorization', `Bearer ${token}`).send({ stream, data: 'h' });
      expect(viaHeader.status, viaHeader.text).to.equal(200);
      const viaBody = await request(gw.url).post('/send').set('Content-Type', 'text/plain').send(JSON.stringify({ stream, data: 'b', token }));
      expect(viaBody.status, viaBody.text).to.equal(200);
      expect((await retained(gw.url, gw.apiKey, stream)).map((m) => m.data)).to.deep.equal(['h', 'b']);
    });

    it('403 when any stream is outside the pub patterns, storing nothing anywhere', async function () {
      const allowed = uniqueStream('room:');
      const denied = uniqueStream('user:');
      const token = await gw.token({ sub: 'alice', streams: ['room:*', 'user:*'], pub: ['room:*'] });
      const as = (body: object) => request(gw.url).post('/send').set('Authorization', `Bearer ${token}`).send(body);
      expectError(await as({ stream: denied, data: 1 }), 403, 'forbidden');
      expectError(await as({ streams: [allowed, denied], data: 1 }), 403, 'forbidden');
      expectError(await as({ messages: [{ stream: allowed, data: 1 }, { stream: denied, data: 2 }] }), 403, 'forbidden');
      expectError(await as({ stream: `x${allowed}`, data: 1 }), 403, 'forbidden');
      expect(await retained(gw.url, gw.apiKey, allowed)).to.deep.equal([]);
      expect(await retained(gw.url, gw.apiKey, denied)).to.deep.equal([]);
    });

    it('403 for a token with read patterns only', async function () {
      const token = await gw.token({ sub: 'reader', streams: ['*'] });
      expectError(await request(gw.url).post('/send').set('Authorization', `Bearer ${token}`).send({ stream: 'room:1', data: 1 }), 403, 'forbidden');
    });

    it('401 for an expired token or one signed with another secret', async function () {
      const stream = uniqueStream();
      const expired = await gw.auth.mintToken({ sub: 'a', streams: [], pub: ['*'], ttlSeconds: -3600 });
      expectError(await request(gw.url).post('/send').set('Authorization', `Bearer ${expired}`).send({ stream, data: 1 }), 401, 'unauthorized');
      // Another gateway with the same secret: its tokens are good here.
      const sameSecret = await small.token({ sub: 'a', streams: [], pub: ['*'] });
      const other = await startGateway({ auth: { secret: 'another-secret-0123456789abcdefghijklmno' } });
      try {
        const token = await other.token({ sub: 'a', streams: [], pub: ['*'] });
        expectError(await request(gw.url).post('/send').send({ stream, data: 1, token }), 401, 'unauthorized');
      } finally {
        await other.shutdown();
      }
      expect((await request(gw.url).post('/send').send({ stream, data: 1, token: sameSecret })).status).to.equal(200);
      expect(await retained(gw.url, gw.apiKey, stream)).to.have.length(1);
    });

    it('401 when the body token is not a string', async function () {
      expectError(await request(gw.url).post('/send').send({ stream: 'room:1', data: 1, token: 5 }), 401, 'unauthorized');
    });
  });
});
