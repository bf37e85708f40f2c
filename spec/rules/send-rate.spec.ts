/**
 * The send rate limits (Messages.publish in lib/messages.ts, counted by lib/limits/rate-limits.ts)
 * on both ways in: a POST /send and a WebSocket `send` frame draw on one budget per client-token
 * subject (rateLimits.sendPerSecond) and one per API key (rateLimits.apiKeySendPerSecond), in one
 * process and across processes sharing a Redis. The limiter's window is one second from the first
 * send, and each test stays well inside it.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import type { ConfigInput } from '../../lib/config.js';
import type { Frame, WsClient } from '../support/clients.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { uniqueStream } from '../support/http.js';
import { sharedRedis, uniquePrefix } from '../support/redis.js';
import { Closers, frameError, httpError, httpSend, openWs, replies, storedData, wsSend, type Seen } from './transports.js';

const RATE = 20;
const API_KEY_RATE = 30;
const LIMITS: ConfigInput = { rateLimits: { sendPerSecond: RATE, apiKeySendPerSecond: API_KEY_RATE, pollsPerIpPerSecond: 0 } };

/** `n` send frames at once (data 0..n-1); resolves once each has its reply. */
async function wsBurst(c: WsClient, stream: string, n: number): Promise<{ acked: unknown[]; refused: Seen[] }> {
  const refs = Array.from({ length: n }, (_, i) => i);
  const got = replies(c, refs);
  for (const ref of refs) c.send({ type: 'send', stream, data: ref, ref });
  const frames: Frame[] = [...(await got).values()];
  return { acked: frames.filter((f) => f.type === 'ack').map((f) => f.ref), refused: frames.filter((f) => f.type === 'error').map(frameError) };
}

/** `n` POST /send at once (data `http-0`..); resolves with how many were stored and the refusals. */
async function httpBurst(url: string, credential: string, stream: string, n: number): Promise<{ ok: number; refused: Seen[] }> {
  const answers = await Promise.all(Array.from({ length: n }, (_, i) => httpSend(url, credential, { stream, data: `http-${i}` })));
  const refused = await Promise.all(answers.filter((r) => r.status !== 200).map(httpError));
  await Promise.all(answers.filter((r) => r.status === 200).map((r) => r.arrayBuffer()));
  return { ok: answers.length - refused.length, refused };
}

const RATE_LIMITED = { code: 'rate_limited', message: 'too many messages sent, slow down', retryAfter: 1 };

describe('the send rate on every way in (rules: lib/messages.ts publish)', function () {
  const closers = new Closers();
  afterEach(() => closers.closeAll());

  describe('in one process', function () {
    let gw: TestGateway;
    let sub: string;
    let token: string;
    beforeEach(async () => {
      gw = closers.add(await startGateway(LIMITS), (g) => g.shutdown());
      sub = `rate-${randomBytes(4).toString('hex')}`;
      token = await gw.token({ sub, streams: [], pub: ['room:*'] });
    });

    it('refuses a burst of WebSocket sends beyond sendPerSecond with rate_limited frames, stores only the rate, then refuses the subject\'s HTTP /send 429', async function () {
      const stream = uniqueStream();
      const c = await openWs(gw.url, token, closers);
      const { acked, refused } = await wsBurst(c, stream, 4 * RATE);
      expect(acked).to.have.length(RATE);
      expect(refused).to.have.length(3 * RATE);
      for (const r of refused) expect(r).to.deep.equal(RATE_LIMITED);
      expect(await storedData(gw.url, gw.apiKey, stream)).to.deep.equal(acked);

      const http = await httpError(await httpSend(gw.url, token, { stream, data: 'http' }));
      expect(http).to.deep.equal({ status: 429, ...RATE_LIMITED });
      expect(await storedData(gw.url, gw.apiKey, stream)).to.have.length(RATE);
      // The budget is the subject's: another subject still sends over WebSocket.
      const other = await openWs(gw.url, await gw.token({ sub: `${sub}-other`, streams: [], pub: ['room:*'] }), closers);
      expect((await wsSend(other, { stream, data: 'other' })).type).to.equal('ack');
    });

    it('refuses a WebSocket send once HTTP sends of the same subject used the second\'s budget', async function () {
      const stream = uniqueStream();
      const { ok, refused } = await httpBurst(gw.url, token, stream, RATE + 5);
      expect(ok).to.equal(RATE);
      for (const r of refused) expect(r).to.deep.equal({ status: 429, ...RATE_LIMITED });
      const c = await openWs(gw.url, token, closers);
      expect(frameError(await wsSend(c, { stream, data: 'ws' }))).to.deep.equal(RATE_LIMITED);
      const stored = await storedData(gw.url, gw.apiKey, stream);
      expect(stored).to.have.length(RATE);
      expect(stored).not.to.include('ws');
    });

    it('limits an API key\'s WebSocket sends by apiKeySendPerSecond (not sendPerSecond), one budget with its HTTP sends', async function () {
      const stream = uniqueStream();
      const c = await openWs(gw.url, gw.apiKey, closers);
      const { acked, refused } = await wsBurst(c, stream, API_KEY_RATE + 10);
      expect(acked).to.have.length(API_KEY_RATE);
      expect(refused).to.have.length(10);
      for (const r of refused) expect(r).to.deep.equal(RATE_LIMITED);
      expect(await httpError(await httpSend(gw.url, gw.apiKey, { stream, data: 'http' }))).to.deep.equal({ status: 429, ...RATE_LIMITED });
      expect(await storedData(gw.url, gw.apiKey, stream)).to.deep.equal(acked);
    });
  });

  describe('across two gateways on one Redis', function () {
    it('shares one budget per subject between WebSocket sends on one node and HTTP sends on the other', async function () {
      const redis = { url: (await sharedRedis()).url, keyPrefix: uniquePrefix() };
      const [a, b] = await Promise.all([startGateway({ ...LIMITS, redis }), startGateway({ ...LIMITS, redis })]);
      closers.add(a, (g) => g.shutdown());
      closers.add(b, (g) => g.shutdown());
      const token = await a.token({ sub: `rate-${randomBytes(4).toString('hex')}`, streams: [], pub: ['room:*'] });
      const stream = uniqueStream();
      const c = await openWs(a.url, token, closers);

      const first = await wsBurst(c, stream, RATE - 8);
      expect(first.acked).to.have.length(RATE - 8);
      const { ok, refused } = await httpBurst(b.url, token, stream, 12);
      expect(ok).to.equal(8);
      for (const r of refused) expect(r).to.deep.equal({ status: 429, ...RATE_LIMITED });
      expect(frameError(await wsSend(c, { stream, data: 'late' }))).to.deep.equal(RATE_LIMITED);
      expect(await storedData(b.url, b.apiKey, stream)).to.have.length(RATE);
    });
  });
});
