/**
 * Prometheus metrics (prom-client), one registry per gateway, served at GET <mount>/metrics (API
 * key) and, with `metrics.port`, on a port of their own (lib/metrics-server.ts). Every name starts
 * with `pollgate_`, Node's default metrics (event-loop lag, GC, heap, CPU) included. Gauges are read
 * from the transports at scrape time; counters and histograms are moved where things happen: the
 * three transports' deliveries, Messages.publish, and the error renderers (HTTP, frames, handshakes).
 * docs/grafana-dashboard.json charts them.
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { Batch } from './delivery.js';
import type { WireError } from './errors.js';
import { FixedHistogram } from './metrics-histogram.js';

export type MetricsTransport = 'poll' | 'sse' | 'ws';

/** What the gauges read at scrape time. */
export interface MetricSources {
  /** Open WebSockets, event streams, and long-poll sessions. */
  connections(transport: MetricsTransport): number;
  /** Polls parked now. */
  parkedPolls(): number;
}

/** The `"ts":` of a stored message (`{"stream":..,"seq":..,"id":..,"ts":<ms>,"data":..}`); NaN if absent. */
export function storedTs(message: string): number {
  // Stream names and ids cannot contain a quote (lib/streams.ts): the first "ts": is the field.
  const at = message.indexOf('"ts":');
  return at < 0 ? NaN : parseInt(message.slice(at + 5, at + 25), 10);
}

/**
 * A counter with one label bumped on every delivery or send: the bumps add up in a plain map and
 * reach prom-client (which hashes and validates the labels on every inc) once per scrape, in its
 * collect(). Returns the bump.
 */
function pendingCounter(o: { name: string; help: string; labelName: string; registers: Registry[] }): (labelValue: string, n: number) => void {
  const pending = new Map<string, number>();
  new Counter({
    name: o.name, help: o.help, labelNames: [o.labelName], registers: o.registers,
    collect() {
      for (const [value, n] of pending) {
        if (n === 0) continue;
        this.inc({ [o.labelName]: value }, n);
        pending.set(value, 0);
      }
    },
  });
  return (labelValue, n) => pending.set(labelValue, (pending.get(labelValue) ?? 0) + n);
}

export class Metrics {
  readonly registry = new Registry();
  private readonly addDelivered: (transport: string, n: number) => void;
  private readonly gapsTotal: Counter<'transport'>;
  private readonly resetsTotal: Counter<'transport'>;
  private readonly addSends: (transport: string, n: number) => void;
  private readonly errorsTotal: Counter<'code'>;
  private readonly rateLimitedTotal: Counter;
  private readonly authFailuresTotal: Counter;
  private readonly storeErrorsTotal: Counter;
  private readonly sendSeconds: FixedHistogram;
  private readonly deliverySeconds: FixedHistogram;

  constructor(sources: MetricSources) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'pollgate_' });
    new Gauge({
      name: 'pollgate_connections',
      help: 'Open client connections in this process: WebSockets, event streams, long-poll sessions',
      labelNames: ['transport'],
      registers,
      collect() {
        for (const t of ['poll', 'sse', 'ws'] as const) this.set({ transport: t }, sources.connections(t));
      },
    });
    new Gauge({
      name: 'pollgate_parked_polls',
      help: 'Long polls parked in this process now',
      registers,
      collect() {
        this.set(sources.parkedPolls());
      },
    });
    this.addDelivered = pendingCounter({ name: 'pollgate_messages_delivered_total', help: 'Messages written to clients', labelName: 'transport', registers });
    this.gapsTotal = new Counter({ name: 'pollgate_gaps_total', help: 'Gaps reported to clients (messages no longer retained)', labelNames: ['transport'], registers });
    this.resetsTotal = new Counter({ name: 'pollgate_resets_total', help: 'Resets reported to clients (a stream log restarted)', labelNames: ['transport'], registers });
    this.addSends = pendingCounter({ name: 'pollgate_sends_total', help: 'Messages appended (a fan-out to n streams counts n)', labelName: 'transport', registers });
    this.errorsTotal = new Counter({ name: 'pollgate_errors_total', help: 'Requests, frames and handshakes refused, by error code', labelNames: ['code'], registers });
    this.rateLimitedTotal = new Counter({ name: 'pollgate_rate_limited_total', help: 'Requests, frames and handshakes refused with rate_limited', registers });
    this.authFailuresTotal = new Counter({ name: 'pollgate_auth_failures_total', help: 'Requests, frames and handshakes refused with unauthorized', registers });
    this.storeErrorsTotal = new Counter({ name: 'pollgate_store_errors_total', help: 'Requests and frames that failed with store_unavailable', registers });
    this.sendSeconds = new FixedHistogram({
      name: 'pollgate_send_duration_seconds',
      help: 'From a send being authorised to every append confirmed by the store',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.deliverySeconds = new FixedHistogram({
      name: 'pollgate_delivery_latency_seconds',
      help: "From a message's ts (the sending gateway's clock at publish) to its delivery by this gateway; newest message of each stream per batch",
      labelName: 'transport',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
  }

  /** A batch written to a client. Costs a counter bump per batch and one ts parse per stream delivered. */
  delivered(transport: MetricsTransport, batch: Batch): void {
    if (batch.count > 0) this.addDelivered(transport, batch.count);
    const now = Date.now();
    for (const d of batch.deliveries) {
      if (d.gap) this.gapsTotal.inc({ transport });
      if (d.reset) this.resetsTotal.inc({ transport });
      const newest = d.messages[d.messages.length - 1];
      if (newest === undefined) continue;
      const ts = storedTs(newest);
      if (ts > 0) this.deliverySeconds.observe(Math.max(0, now - ts) / 1000, transport);
    }
  }

  /** `appends` stored for one send, which took `ms` from authorised to confirmed. */
  sent(transport: 'http' | 'ws', appends: number, ms: number): void {
    this.addSends(transport, appends);
    this.sendSeconds.observe(ms / 1000);
  }

  /** An error shown to a client (any renderer). */
  refused(wire: Pick<WireError, 'code'>): void {
    this.errorsTotal.inc({ code: wire.code });
    if (wire.code === 'rate_limited') this.rateLimitedTotal.inc();
    else if (wire.code === 'unauthorized') this.authFailuresTotal.inc();
    else if (wire.code === 'store_unavailable') this.storeErrorsTotal.inc();
  }

  /** The text exposition format. */
  scrape(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
