/**
 * A Prometheus histogram with fixed buckets and at most one label, for the two observed on every
 * send and every delivery. prom-client's Histogram spends several µs an observation (a closure,
 * label validation and hashing, and bucket counts kept under float-valued property keys, each
 * turned into a string); a send paid about 4 µs for it (docs/PERFORMANCE.md, issue 19). This
 * counts into a Float64Array and gives prom-client's registry the same exposition when scraped
 * (`_bucket{le,label}` cumulated, `+Inf`, `_sum`, `_count`): registered as a custom metric, so
 * /metrics reads exactly as before.
 */
import type { Registry } from 'prom-client';

interface Series {
  /** Observations per bucket (not cumulated): index i counts values in (buckets[i-1], buckets[i]]. */
  counts: Float64Array;
  sum: number;
  count: number;
}

interface Sample {
  metricName: string;
  labels: Record<string, string | number>;
  value: number;
}

export interface FixedHistogramOptions {
  name: string;
  help: string;
  /** Upper bounds, ascending. */
  buckets: readonly number[];
  labelName?: string;
  registers: Registry[];
}

export class FixedHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly buckets: readonly number[];
  private readonly labelName?: string;
  /** By label value ('' without a label). */
  private readonly series = new Map<string, Series>();

  constructor(o: FixedHistogramOptions) {
    this.name = o.name;
    this.help = o.help;
    this.buckets = o.buckets;
    this.labelName = o.labelName;
    // As prom-client does: without a label the one series is there (all zeros) before any observation.
    if (!this.labelName) this.series.set('', { counts: new Float64Array(this.buckets.length), sum: 0, count: 0 });
    for (const r of o.registers) r.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  observe(value: number, labelValue = ''): void {
    let s = this.series.get(labelValue);
    if (!s) this.series.set(labelValue, (s = { counts: new Float64Array(this.buckets.length), sum: 0, count: 0 }));
    const b = this.buckets;
    let i = 0;
    while (i < b.length && value > b[i]!) i++;
    // Above the last bound: counted in +Inf only (count).
    if (i < b.length) s.counts[i]!++;
    s.sum += value;
    s.count++;
  }

  /** What prom-client's registry renders (Registry.metrics()) and returns as JSON. */
  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Sample[] }> {
    const values: Sample[] = [];
    for (const [labelValue, s] of this.series) {
      const own: Record<string, string> = this.labelName ? { [this.labelName]: labelValue } : {};
      let cumulated = 0;
      this.buckets.forEach((le, i) => {
        cumulated += s.counts[i]!;
        values.push({ metricName: `${this.name}_bucket`, labels: { le, ...own }, value: cumulated });
      });
      values.push({ metricName: `${this.name}_bucket`, labels: { le: '+Inf', ...own }, value: s.count });
      values.push({ metricName: `${this.name}_sum`, labels: own, value: s.sum });
      values.push({ metricName: `${this.name}_count`, labels: own, value: s.count });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** Registry.resetMetrics(): every series gone, as prom-client's reset() leaves it. */
  reset(): void {
    this.series.clear();
  }
}
