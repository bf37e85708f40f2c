/**
 * Caps on parked polls per subject, per client IP and per process (limits.parked*): a client over
 * a cap is answered 429 / 503 with Retry-After instead of holding another socket, and a flood of
 * polls from one address cannot grow the process.
 */
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { spawnGateway, startGateway, TEST_API_KEY, type ChildGateway, type TestGateway } from '../support/gateway.js';
import { sendOk, stats, uniqueStream, untilParked } from '../support/http.js';
import { rawPoll, type RawRequest, type RawResponse } from '../support/raw-http.js';
import { waitFor } from '../support/wait.js';

function expectRefused(res: RawResponse, status: number, code: string, retryAfter: string): void {
  expect(res.status, res.body).to.equal(status);
  expect(JSON.parse(res.body).error.code).to.equal(code);
  expect(res.headers['retry-after']).to.equal(retryAfter);
}

describe('parked-poll caps', function () {
  describe('per subject, IP and process (in-process gateway)', function () {
    let gw: TestGateway;
    const open: RawRequest[] = [];

    beforeEach(async () => {
      gw = await startGateway({
        limits: { parkedPerSubject: 2, parkedPerIp: 3, parkedPerProcess: 5, capRetryAfterSeconds: 3 },
        rateLimits: { pollsPerIpPerSecond: 0 },
      });
    });
    afterEach(async () => {
      open.splice(0).forEach((r) => r.abort());
      await gw.shutdown();
    });

    function park(credential: string, stream: string, from?: string): RawRequest {
      const r = rawPoll(gw.url, credential, { streams: stream, timeout: 30 }, from);
      open.push(r);
      return r;
    }

    it('answers 429 rate_limited with Retry-After to a subject holding limits.parkedPerSubject polls, and parks again once one ends', async function () {
      const token = await gw.token({ sub: 'alice', streams: ['room:*'] });
      const first = park(token, 'room:a', '127.0.0.2');
      park(token, 'room:b', '127.0.0.3');
      await waitFor(() => gw.longPolls.size === 2, 'two parked polls');
      expectRefused(await park(token, 'room:c', '127.0.0.4').response, 429, 'rate_limited', '3');
      // Another subject from the same addresses is not affected.
      const bob = await gw.token({ sub: 'bob', streams: ['room:*'] });
      park(bob, 'room:d', '127.0.0.4');
      await waitFor(() => gw.longPolls.size === 3, 'bob parked');
      // A poll that does not park (timeout 0) is answered as usual.
      const quick = await rawPoll(gw.url, token, { streams: 'room:a', timeout: 0 }).response;
      expect(quick.status).to.equal(200);

      await sendOk(gw.url, gw.apiKey, { stream: 'room:a', data: 1 });
      expect((await first.response).status).to.equal(200);
      park(token, 'room:e');
      await waitFor(() => gw.longPolls.size === 3, 'alice parked again');
    });

    it('answers 429 to an address holding limits.parkedPerIp polls, whoever asks; other addresses still park', async function () {
      for (let i = 0; i < 3; i++) park(gw.apiKey, uniqueStream(), '127.0.0.7');
      await waitFor(() => gw.longPolls.size === 3, 'three parked polls');
      expectRefused(await park(gw.apiKey, uniqueStream(), '127.0.0.7').response, 429, 'rate_limited', '3');
      const token = await gw.token({ sub: 'carol', streams: ['room:*'] });
      expectRefused(await park(token, 'room:x', '127.0.0.7').response, 429, 'rate_limited', '3');
      park(gw.apiKey, uniqueStream(), '127.0.0.8');
      await waitFor(() => gw.longPolls.size === 4, 'another address parked');
    });

    it('answers 503 overloaded with Retry-After once the process holds limits.parkedPerProcess polls, and frees slots of clients that left', async function () {
      const polls = [1, 2, 3, 4, 5].map((i) => park(gw.apiKey, uniqueStream(), `127.0.1.${i}`));
      await waitFor(() => gw.longPolls.size === 5, 'five parked polls');
      expectRefused(await park(gw.apiKey, uniqueStream(), '127.0.1.9').response, 503, 'overloaded', '3');
      polls[0]!.abort();
      await waitFor(() => gw.longPolls.size === 4 && gw.caps.size === 4, 'the slot of the client that left');
      park(gw.apiKey, uniqueStream(), '127.0.1.9');
      await waitFor(() => gw.longPolls.size === 5, 'a new poll parked in the freed slot');
    });
  });

  describe('a flood of polls from one address (child process)', function () {
    this.timeout(60_000);
    const CAP = 200;
    const ATTEMPTS = 5000;
    let child: ChildGateway;
    let dir: string;

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'pollgate-caps-'));
      const file = join(dir, 'config.json');
      writeFileSync(file, JSON.stringify({
        limits: { parkedPerIp: CAP, parkedPerProcess: CAP + 50 },
        rateLimits: { pollsPerIpPerSecond: 0 },
        log: { level: 'warn' },
      }));
      child = await spawnGateway({ POLLGATE_CONFIG: file });
    });
    after(async () => {
      await child?.kill();
      rmSync(dir, { recursive: true, force: true });
    });

    it(`never holds more than limits.parkedPerIp polls for ${ATTEMPTS} attempts, refuses the rest with 429, and stays small`, async function () {
      const before = await stats(child.url, TEST_API_KEY);
      let maxParked = 0;
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          maxParked = Math.max(maxParked, (await stats(child.url, TEST_API_KEY)).parkedPolls);
          await new Promise((r) => setTimeout(r, 20));
        }
      })();

      const hanging: RawRequest[] = [];
      const counts = new Map<number, number>();
      let next = 0;
      // 64 workers; a poll not answered within 200 ms is taken to be parked and left open.
      const worker = async () => {
        while (next < ATTEMPTS) {
          next++;
          const r = rawPoll(child.url, TEST_API_KEY, { streams: 'flood:1', timeout: 50 }, '127.0.0.5');
          const answered = await Promise.race([r.response.then((res) => res.status, () => -1), new Promise<null>((res) => setTimeout(res, 200, null))]);
          if (answered === null) {
            hanging.push(r);
            r.response.then((res) => counts.set(res.status, (counts.get(res.status) ?? 0) + 1), () => undefined);
          } else counts.set(answered, (counts.get(answered) ?? 0) + 1);
        }
      };
      try {
        await Promise.all(Array.from({ length: 64 }, worker));
        await untilParked(child.url, TEST_API_KEY, CAP);
        const after = await stats(child.url, TEST_API_KEY);
        sampling = false;
        await sampler;
        expect(maxParked).to.be.at.most(CAP);
        expect(after.parkedPolls).to.equal(CAP);
        expect(counts.get(429) ?? 0).to.be.at.least(ATTEMPTS - CAP - hanging.length);
        expect([...counts.keys()].filter((s) => s !== 429), JSON.stringify([...counts])).to.deep.equal([]);
        const rssGrowth = (after.memory as { rss: number }).rss - (before.memory as { rss: number }).rss;
        expect(rssGrowth, `RSS grew ${rssGrowth} bytes`).to.be.below(150 * 1024 * 1024);
        // The server is still answering everyone else.
        const other = await rawPoll(child.url, TEST_API_KEY, { streams: 'flood:2', timeout: 0 }, '127.0.0.6').response;
        expect(other.status).to.equal(200);
      } finally {
        sampling = false;
        hanging.forEach((r) => r.abort());
      }
    });
  });
});
