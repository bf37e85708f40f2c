/**
 * Hidden classes on the hot path. V8 gives the copy an object spread makes (`{ ...x }`) a hidden
 * class of its own, outside any transition tree, once the spread is hot; each field added after
 * the spread (`{ ...x, more: true }`) then makes a new hidden class and descriptor array, in the
 * old generation, for every call. `parsePollParams` did that twice for every poll
 * (docs/PERFORMANCE.md, "Hidden classes made per poll"). This runs a gateway with V8's map log and
 * counts the transitions from such detached hidden classes over polls that park and are woken,
 * polls answered from a read, polls cut by their limit, and sends: they must not come with
 * requests. Node makes a few for each new socket, and the start-up its share.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { spawnGateway, TEST_API_KEY, type ChildGateway } from './support/gateway.js';
import { poll, sendOk, untilParked } from './support/http.js';
import { sharedRedis, uniquePrefix } from './support/redis.js';

/** A field name no other code uses: the JSON parse of a send whose data has it logs its one transition. */
const MARK = { start: 'shapesMarkStart7f3a', end: 'shapesMarkEnd7f3a' };
/** Rounds of traffic between the marks: a path taken once a round (a cut answer) makes this many. */
const ROUNDS = 30;

/**
 * Transitions from a hidden class that no transition tree holds, by the field added, between the
 * two marks (the start-up makes its own share, and so does Node for each new socket).
 */
function detachedTransitions(v8Log: string): Map<string, number> {
  const byField = new Map<string, number>();
  let inside = false;
  for (const line of v8Log.split('\n')) {
    // map,Transition,<time>,<from>,<to>,<pc>,<line>,<column>,<reason>,<field>
    if (!line.startsWith('map,Transition,')) continue;
    const fields = line.split(',');
    const field = fields[9] ?? '';
    if (field === MARK.start) inside = true;
    if (field === MARK.end) return byField;
    if (inside && fields[8] === 'prototype') byField.set(field, (byField.get(field) ?? 0) + 1);
  }
  throw new Error(`the V8 log has no ${inside ? 'end' : 'start'} mark`);
}

/** Every kind of request the hot path serves, `rounds` times over `streams` streams; resolves with the requests made. */
async function traffic(gw: ChildGateway, streams: string[], rounds: number): Promise<number> {
  const key = TEST_API_KEY;
  const cursors = new Map<string, string>();
  let requests = 0;
  for (const s of streams) {
    cursors.set(s, (await poll(gw.url, key, { streams: s, timeout: 0 })).cursor);
    requests++;
  }
  for (let round = 0; round < rounds; round++) {
    // Sent with nobody parked, then read: the poll is answered from the store (the tail cache on Redis).
    for (const s of streams) await sendOk(gw.url, key, { stream: s, data: { round } });
    for (const s of streams) cursors.set(s, (await poll(gw.url, key, { streams: s, cursor: cursors.get(s), timeout: 0 })).cursor);
    // Two streams with news and a limit of one: the answer is cut (makeBatch) and says so.
    const pair = 'shapes-cut:a,shapes-cut:b';
    const before = (await poll(gw.url, key, { streams: pair, timeout: 0, since: 'now' })).cursor;
    await sendOk(gw.url, key, { messages: [{ stream: 'shapes-cut:a', data: 1 }, { stream: 'shapes-cut:b', data: 2 }] });
    expect((await poll(gw.url, key, { streams: pair, cursor: before, timeout: 0, limit: 1 })).messages).to.have.length(1);
    // Parked, then woken by a send.
    const parked = streams.map((s) => poll(gw.url, key, { streams: s, cursor: cursors.get(s), timeout: 20 }));
    // Should a step below fail, these end with the gateway: not as unhandled rejections.
    for (const p of parked) p.catch(() => {});
    await untilParked(gw.url, key, streams.length);
    for (const s of streams) await sendOk(gw.url, key, { stream: s, data: { round, woke: true } });
    for (const [i, answer] of (await Promise.all(parked)).entries()) {
      expect(answer.messages).to.have.length(1);
      cursors.set(streams[i]!, answer.cursor);
    }
    requests += streams.length * 4 + 3;
  }
  return requests;
}

describe('hidden classes on the hot path', function () {
  this.timeout(60_000);

  for (const store of ['memory', 'redis'] as const) {
    it(`${store} store: polls, reads, cut answers and sends make no detached hidden classes`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'pollgate-maps-'));
      const v8Log = join(dir, 'v8.log');
      // Every request here comes from 127.0.0.1: lift the per-IP poll rate this test is not about.
      const config = join(dir, 'config.json');
      writeFileSync(config, JSON.stringify({ rateLimits: { pollsPerIpPerSecond: 0 } }));
      const env: Record<string, string> = { POLLGATE_CONFIG: config };
      try {
        if (store === 'redis') Object.assign(env, { REDIS_URL: (await sharedRedis()).url, POLLGATE_REDIS_PREFIX: uniquePrefix() });
        const gw = await spawnGateway(env, [], ['--log-maps', '--no-log-maps-details', `--logfile=${v8Log}`, '--no-logfile-per-isolate']);
        let requests = 0;
        try {
          const streams = Array.from({ length: 8 }, (_, i) => `shapes:${i}`);
          await traffic(gw, streams, 5);
          await sendOk(gw.url, TEST_API_KEY, { stream: 'shapes-mark', data: { [MARK.start]: 1 } });
          requests = await traffic(gw, streams, ROUNDS);
          await sendOk(gw.url, TEST_API_KEY, { stream: 'shapes-mark', data: { [MARK.end]: 1 } });
        } finally {
          // V8 writes its log out as the process exits.
          gw.process.kill('SIGTERM');
          await gw.exited;
        }
        const byField = detachedTransitions(readFileSync(v8Log, 'utf8'));
        const total = [...byField.values()].reduce((a, b) => a + b, 0);
        const top = [...byField].sort((x, y) => y[1] - x[1]).slice(0, 8);
        const why = `detached transitions over ${requests} requests, by field: ${JSON.stringify(top)}`;
        expect(total, why).to.be.below(requests / 20);
        // None made on a path taken once a round or more (Node's per new socket are fewer).
        expect(top[0]?.[1] ?? 0, why).to.be.below(ROUNDS);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
