/**
 * An answered poll dies young. The parked polls were kept in two Sets (LongPolls' and the waiter
 * registry's); a Set that members join and leave all the time replaces its hash table now and
 * then, and a replaced table that was old still points at the young polls it held, which the
 * scavenger then keeps, and promotes, until the next full collection (WaiterLink, lib/waiters.ts;
 * docs/PERFORMANCE.md, "No table of every parked poll"). spec/support/promotion-probe.ts answers
 * 20,000 polls in a process of its own and reports how much the old generation grew: 205-220
 * bytes an answer now, 590-625 with the Sets (checked).
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

const PROBE = fileURLToPath(new URL('./support/promotion-probe.js', import.meta.url));

describe('promotion: an answered poll', function () {
  this.timeout(60_000);

  it('is not kept by the parked-poll bookkeeping past its answer', function () {
    const run = spawnSync(process.execPath, ['--expose-gc', '--max-semi-space-size=32', PROBE], { encoding: 'utf8' });
    expect(run.status, run.stderr).to.equal(0);
    const { oldGrowthBytes, answered, parked } = JSON.parse(run.stdout) as { oldGrowthBytes: number; answered: number; parked: number };
    expect(answered).to.equal(20_000);
    expect(parked).to.equal(300);
    expect(oldGrowthBytes / answered, 'old generation bytes gained per answered poll').to.be.below(400);
  });
});
