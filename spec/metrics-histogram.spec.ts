/**
 * The histogram observed on every send and delivery (FixedHistogram) scrapes exactly as
 * prom-client's Histogram would for the same observations, and the hot counters reach
 * prom-client only when scraped.
 */
import { expect } from 'chai';
import { Counter, Histogram, Registry } from 'prom-client';
import { Metrics } from '../lib/metrics.js';
import { FixedHistogram } from '../lib/metrics-histogram.js';
import type { Batch } from '../lib/delivery.js';

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.5, 1];
// On a bound, between bounds, below the first, above the last, zero.
const VALUES = [0.001, 0.0007, 0.003, 0.0025, 0.7, 1, 2.5, 0, 0.01, 0.011];

describe('metrics: the histograms and counters of the hot path', function () {
  it('FixedHistogram renders what prom-client renders for the same observations, with and without a label', async function () {
    const theirs = new Registry();
    const ours = new Registry();
    const labelled = new Histogram({ name: 't_seconds', help: 'h', labelNames: ['transport'], buckets: BUCKETS, registers: [theirs] });
    const plain = new Histogram({ name: 'u_seconds', help: 'h', buckets: BUCKETS, registers: [theirs] });
    const fixedLabelled = new FixedHistogram({ name: 't_seconds', help: 'h', labelName: 'transport', buckets: BUCKETS, registers: [ours] });
    const fixedPlain = new FixedHistogram({ name: 'u_seconds', help: 'h', buckets: BUCKETS, registers: [ours] });
    VALUES.forEach((v, i) => {
      const transport = i % 3 === 0 ? 'ws' : 'poll';
      labelled.observe({ transport }, v);
      fixedLabelled.observe(v, transport);
      plain.observe(v);
      fixedPlain.observe(v);
    });
    expect(await ours.metrics()).to.equal(await theirs.metrics());
    // (prom-client's JSON carries an empty `exemplar` on every sample.)
    const json = async (r: Registry) => JSON.parse(JSON.stringify(await r.getMetricsAsJSON(), (k, v: unknown) => (k === 'exemplar' && v == null ? undefined : v))) as unknown;
    expect(await json(ours)).to.deep.equal(await json(theirs));
    ours.resetMetrics();
    theirs.resetMetrics();
    expect(await ours.metrics()).to.equal(await theirs.metrics());
  });

  it('counts deliveries and sends outside prom-client until a scrape, and exactly at it', async function () {
    const metrics = new Metrics({ connections: () => 0, parkedPolls: () => 0 });
    const batch = { count: 2, positions: new Map(), deliveries: [{ stream: 's', position: { epoch: 'e', seq: 2 }, messages: ['{"ts":1}', `{"ts":${Date.now()}}`] }] } as Batch;
    metrics.delivered('poll', batch);
    metrics.delivered('ws', batch);
    metrics.sent('http', 3, 2);
    const delivered = metrics.registry.getSingleMetric('pollgate_messages_delivered_total') as Counter;
    expect((await delivered.get()).values.map((v) => [v.labels.transport, v.value])).to.deep.equal([['poll', 2], ['ws', 2]]);
    metrics.delivered('poll', batch);
    const text = await metrics.scrape();
    expect(text).to.include('pollgate_messages_delivered_total{transport="poll"} 4\n');
    expect(text).to.include('pollgate_sends_total{transport="http"} 3\n');
    expect(text).to.include('pollgate_send_duration_seconds_count 1\n');
    expect(text).to.include('pollgate_delivery_latency_seconds_count{transport="poll"} 2\n');
    // Bumped in a plain map, not in prom-client's own (which hashes and validates labels each time).
    const inPromClient = () => Object.values((delivered as unknown as { hashMap: Record<string, { value: number }> }).hashMap).reduce((a, v) => a + v.value, 0);
    expect(inPromClient()).to.equal(6);
    metrics.delivered('poll', batch);
    expect(inPromClient()).to.equal(6);
    expect(await metrics.scrape()).to.include('pollgate_messages_delivered_total{transport="poll"} 6\n');
  });
});
