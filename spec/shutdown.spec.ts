/**
 * SIGTERM: stop accepting, answer parked polls at once with their cursors unchanged, exit 0.
 */
import { expect } from 'chai';
import { spawnGateway, TEST_API_KEY, type ChildGateway } from './support/gateway.js';
import { poll, untilParked } from './support/http.js';

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
