/**
 * Authorization on every request, not once per client: each poll and each send is checked
 * against the token's patterns, and names are validated by the grammar before any pattern is
 * tried, so a name cannot escape a prefix pattern (faye CVE-2020-11020 class).
 */
import { expect } from 'chai';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { expectError, poll, sendOk, uniqueStream } from '../support/http.js';
import request from 'supertest';

describe('authorization on every request', function () {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway({ rateLimits: { sendPerSecond: 0, pollsPerIpPerSecond: 0 } });
  });
  after(async () => gw.shutdown());

  it('checks every poll on its own: a token that just polled room:1 is refused room:2, alone or beside room:1, cursor or not', async function () {
    const mine = uniqueStream('room:');
    const other = uniqueStream('secret:');
    const token = await gw.token({ sub: 'alice', streams: [mine] });
    const ok = await poll(gw.url, token, { streams: mine, timeout: 0 });
    // A cursor the API key got for both streams does not widen what the token may read.
    const both = await poll(gw.url, gw.apiKey, { streams: `${mine},${other}`, timeout: 0 });
    for (const query of [`streams=${other}`, `streams=${mine},${other}`, `streams=${other}&cursor=${both.cursor}`, `streams=${other}&cursor=${ok.cursor}`]) {
      expectError(await request(gw.url).get(`/poll?${query}&timeout=0`).set('Authorization', `Bearer ${token}`), 403, 'forbidden');
    }
    await sendOk(gw.url, gw.apiKey, { stream: other, data: 'hidden' });
    const again = await poll(gw.url, token, { streams: mine, cursor: both.cursor, timeout: 0 });
    expect(again.messages).to.deep.equal([]);
  });

  it('checks every send on its own: a token that just sent to its stream is refused another', async function () {
    const token = await gw.token({ sub: 'bob', streams: [], pub: ['room:bob'] });
    const sendAs = (body: unknown) => request(gw.url).post('/send').set('Authorization', `Bearer ${token}`).send(body as object);
    expect((await sendAs({ stream: 'room:bob', data: 1 })).status).to.equal(200);
    expectError(await sendAs({ stream: 'room:bobby', data: 1 }), 403, 'forbidden');
    expectError(await sendAs({ messages: [{ stream: 'room:bob', data: 1 }, { stream: 'room:alice', data: 1 }] }), 403, 'forbidden');
    expect((await sendAs({ stream: 'room:bob', data: 2 })).status).to.equal(200);
  });

  describe('names are validated before patterns are tried', function () {
    const escapes: [string, string][] = [
      ['a path traversal', 'room:1/../secret'],
      ['a backslash traversal', 'room:1\\..\\secret'],
      ['a Cyrillic look-alike inside the prefix', 'room:\u043e'],
      ['a Cyrillic look-alike of the prefix', 'r\u043e\u043em:1'],
      ['a zero-width space', 'room:1\u200b'],
      ['a fullwidth colon', 'room\uff1a1'],
      ['a NUL byte', 'room:1\u0000secret'],
      ['a newline', 'room:1\nsecret'],
      ['a wildcard', 'room:*'],
      ['hash-tag braces', 'room:{secret}'],
      ['a 201-character name under the prefix', `room:${'a'.repeat(196)}`],
    ];
    let token: string;
    before(async () => {
      token = await gw.token({ sub: 'eve', streams: ['room:*'], pub: ['room:*'] });
    });

    for (const [what, name] of escapes) {
      it(`answers 400 (not 200 or 403) to ${what}, for a token allowed room:*`, async function () {
        expectError(await request(gw.url).get('/poll').query({ streams: name, timeout: 0 }).set('Authorization', `Bearer ${token}`), 400, 'bad_request');
        expectError(await request(gw.url).post('/poll').send({ streams: [name], timeout: 0 }).set('Authorization', `Bearer ${token}`), 400, 'bad_request');
        expectError(await request(gw.url).post('/send').send({ stream: name, data: 1 }).set('Authorization', `Bearer ${token}`), 400, 'bad_request');
      });
    }

    it('accepts the longest legal name (200 characters) under the prefix', async function () {
      const name = `room:${'a'.repeat(195)}`;
      const res = await request(gw.url).get('/poll').query({ streams: name, timeout: 0 }).set('Authorization', `Bearer ${token}`);
      expect(res.status).to.equal(200);
    });
  });
});
