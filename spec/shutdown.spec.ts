/**
 * SIGTERM: stop accepting, answer parked polls at once with their cursors unchanged, exit 0; and
 * the gateway's close leaves no timer of its own running.
 */
import { expect } from 'chai';
import request from 'supertest';
import { spawnGateway, startGateway, TEST_API_KEY, type ChildGateway, type TestGateway } from './support/gateway.js';
import { poll, untilParked } from './support/http.js';
import { countTimeouts } from './support/timeouts.js';

describe('SIGTERM', function () {
  this.timeout(30_000);
  let gw: ChildGateway | undefined;
  afterEach(async () => gw?.kill());

  it('answers every parked poll at once with its cursor unchanged, then exits 0', async () => {
    gw = await spawnGateway({ LOG_LEVEL: 'info' });
    const starts = await Promise.all(['sd:1', 'sd:2', 'sd:3'].map((s) => poll(gw!.url, TEST_API_KEY, { streams: s, timeout: 0 })));
    const parked = starts.map((s, i) => poll(gw!.url, TEST_API_KEY, { streams: `sd:${i + 1}`, cursor: s.cursor, timeout: 50 }));
    await untilParked(gw.url, TEST_API_KEY, 3);
    const started = Date.now();
    gw.process.kill('SIGTERM');
    const answers = await Promise.all(parked);
    expect(Date.now() - started).to.be.below(5000);
    answers.forEach((a, i) => expect(a).to.deep.equal({ messages: [], cursor: starts[i]!.cursor }));
    expect(await gw.exited).to.equal(0);
    expect(gw.output()).to.match(/"parked":3/);
  });
});

describe("the gateway's close", function () {
  it('leaves no body-deadline timer running once the gateway closed', async function () {
    // A body timeout no other timer in this process has: the Timeouts made for it are the body reads'.
    const timers = countTimeouts(7_654);
    let gw: TestGateway | undefined;
    try {
      gw = await startGateway({ limits: { bodyTimeoutMs: 7_654 } });
      const res = await request(gw.url).post('/send').set('Authorization', `Bearer ${gw.apiKey}`).send({ stream: 'body:close', data: 1 });
      expect(res.status, res.text).to.equal(200);
      // The read ended; its queue's timer runs on until it finds the queue empty.
      expect(timers.running).to.equal(1);
      await gw.shutdown();
      gw = undefined;
      // A cleared Timeout is reported destroyed a turn later: no event to await, so two turns.
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setImmediate(r));
      expect(timers.running).to.equal(0);
    } finally {
      await gw?.shutdown();
      timers.stop();
    }
  });
});
