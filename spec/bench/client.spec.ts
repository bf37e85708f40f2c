import { expect } from 'chai';
import { arrivalTimes } from '../../bench/client.js';

describe('bench/client arrivalTimes', function () {
  it('gives the nearest-rank 50th, 99th and 100th percentile of unsorted arrivals, rounded to 0.1 ms', function () {
    const arrivals = Array.from({ length: 100 }, (_, i) => 100 - i + 0.04);
    expect(arrivalTimes(arrivals)).to.deep.equal({ p50Ms: 50, p99Ms: 99, p100Ms: 100 });
  });

  it('reads NaN when nothing arrived', function () {
    const t = arrivalTimes([]);
    expect(Number.isNaN(t.p50Ms) && Number.isNaN(t.p99Ms) && Number.isNaN(t.p100Ms)).to.equal(true);
  });
});
