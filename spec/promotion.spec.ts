/**
 * An answered poll dies young. The parked polls were kept in two Sets (LongPolls' and the waiter
 * registry's); a Set that members join and leave all the time replaces its hash table now and
 * then, and a replaced table that was old still points at the young polls it held, which the
 * scavenger then keeps, and promotes, until the next full collection (WaiterLink, lib/waiters.ts;
 * docs/PERFORMANCE.md, "No table of every parked poll"). spec/support/promotion-probe.ts answers
 * 20,000 polls in a process of its own and reports how much the old generation grew: 260-290
 * bytes an answer now, 700-960 with the Sets (checked).
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { startGateway } from './support/gateway.js';
import { poll, untilParked } from './support/http.js';

const PROBE = fileURLToPath(new URL('./support/promotion-probe.js', import.meta.url));

describe('promotion: an answered poll', function () {
  this.timeout(60_000);

  it('is not kept by the parked-poll bookkeeping past its answer', function () {
    const run = spawnSync(process.execPath, ['--expose-gc', '--max-semi-space-size=32', PROBE], { encoding: 'utf8' });
    expect(run.status, run.stderr).to.equal(0);
    const { oldGrowthBytes, answered, parked } = JSON.parse(run.stdout) as { oldGrowthBytes: number; answered: number; parked: number };
    expect(answered).to.equal(20_000);
    expect(parked).to.equal(300);
    expect(oldGrowthBytes / answered, 'old generation bytes gained per answered poll').to.be.below(500);
  });

  it('is in no Map or Set that the long-poll or the registry holds directly while parked, with or without a conn id', async function () {
    // A table keyed by conn id churned like the Sets did: with the browser client's conn ids the
    // gateway promoted 3.0 KB per delivery, 0.6-0.7 without that table (docs/PERFORMANCE.md).
    const gw = await startGateway();
    const abort = new AbortController();
    try {
      const polls = [poll(gw.url, gw.apiKey, { streams: 'table:1', conn: 'tab1', timeout: 30 }, abort.signal), poll(gw.url, gw.apiKey, { streams: 'table:2', timeout: 30 }, abort.signal)];
      await untilParked(gw.url, gw.apiKey, 2);
      const tables = [...Object.values(gw.longPolls), ...Object.values(gw.registry)].filter((v): v is Map<unknown, unknown> | Set<unknown> => v instanceof Map || v instanceof Set);
      const parkedPolls = tables.flatMap((t) => [...t.keys(), ...t.values()]).filter((m) => typeof m === 'object' && m !== null && 'whenDone' in m);
      expect(parkedPolls).to.have.length(0);
      abort.abort();
      await Promise.allSettled(polls);
    } finally {
      await gw.shutdown();
    }
  });
});
