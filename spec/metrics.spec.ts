/**
 * GET /metrics (lib/metrics.ts): Prometheus text with the families the issue asks for, all named
 * pollgate_*, and counters that move when messages are sent, delivered on every transport, and
 * refused. Also the credential-free metrics.port.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { startGateway, type TestGateway } from './support/gateway.js';
import { SseClient, WsClient, sendAll } from './support/clients.js';
import { expectFetchError, poll } from './support/http.js';

/** Every sample of the exposition: `name{labels}` -> value. */
async function scrape(url: string, key?: string): Promise<Map<string, number>> {
  const res = await fetch(url, { headers: key ? { Authorization: `Bearer ${key}` } : {} });
  expect(res.status).to.equal(200);
  expect(res.headers.get('content-type')).to.match(/^text\/plain; version=0\.0\.4/);
  const samples = new Map<string, number>();
  for (const line of (await res.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    samples.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return samples;
}

describe('GET /metrics', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway({ metrics: { port: 0 }, rateLimits: { sendPerSecond: 1 } });
  });
  after(() => gw.shutdown());

  it('scrapes the families of issue 21, every one named pollgate_*', async () => {
    const m = await scrape(`${gw.url}/metrics`, gw.apiKey);
    for (const name of [
      'pollgate_connections{transport="ws"}', 'pollgate_connections{transport="sse"}', 'pollgate_connections{transport="poll"}', 'pollgate_parked_polls',
      'pollgate_nodejs_eventloop_lag_seconds', 'pollgate_process_cpu_seconds_total', 'pollgate_nodejs_heap_size_used_bytes',
      'pollgate_send_duration_seconds_count', 'pollgate_rate_limited_total', 'pollgate_auth_failures_total', 'pollgate_store_errors_total',
    ]) expect(m.has(name), name).to.equal(true);
    for (const name of m.keys()) expect(name).to.match(/^pollgate_/);
  });

  it('moves the counters: sends, deliveries per transport, latency, open connections, auth failures and rate limits', async () => {
    const before = await scrape(`${gw.url}/metrics`, gw.apiKey);
    const at = (m: Map<string, number>, k: string) => m.get(k) ?? 0;
    const ws = await WsClient.open(gw.url, { token: gw.apiKey });
    await ws.subscribe(['met:1']);
    const es = new SseClient(`${gw.url}/sse?streams=met:1&token=${gw.apiKey}`);
    await es.next('ready');
    const start = await poll(gw.url, gw.apiKey, { streams: 'met:1', timeout: 0 });
    const during = await scrape(`${gw.url}/metrics`, gw.apiKey);
    expect(during.get('pollgate_connections{transport="ws"}')).to.equal(1);
    expect(during.get('pollgate_connections{transport="sse"}')).to.equal(1);
    await sendAll(gw.url, gw.apiKey, 'met:1', ['a', 'b']);
    await ws.messages(2);
    await es.next('message');
    await es.next('message');
    await poll(gw.url, gw.apiKey, { streams: 'met:1', cursor: start.cursor, timeout: 0 });
    expect((await fetch(`${gw.url}/poll?streams=met:1`, { headers: { Authorization: 'Bearer nope' } })).status).to.equal(401);
    const token = await gw.token({ sub: 'rl', streams: ['met:*'], pub: ['met:*'] });
    const sendAsClient = () => fetch(`${gw.url}/send`, { method: 'POST', headers: { Authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{"stream":"met:2","data":1}' });
    await sendAsClient();
    expect((await sendAsClient()).status).to.equal(429);
    ws.send({ type: 'send', stream: 'met:2', data: 2 });
    await ws.next('ack');
    es.close();
    await ws.close();
    const after = await scrape(`${gw.url}/metrics`, gw.apiKey);
    for (const t of ['ws', 'sse', 'poll']) {
      expect(at(after, `pollgate_messages_delivered_total{transport="${t}"}`) - at(before, `pollgate_messages_delivered_total{transport="${t}"}`), t).to.equal(2);
      expect(at(after, `pollgate_delivery_latency_seconds_count{transport="${t}"}`) - at(before, `pollgate_delivery_latency_seconds_count{transport="${t}"}`), t).to.be.at.least(1);
    }
    expect(at(after, 'pollgate_sends_total{transport="http"}') - at(before, 'pollgate_sends_total{transport="http"}')).to.equal(3);
    expect(at(after, 'pollgate_sends_total{transport="ws"}') - at(before, 'pollgate_sends_total{transport="ws"}')).to.equal(1);
    expect(at(after, 'pollgate_send_duration_seconds_count') - at(before, 'pollgate_send_duration_seconds_count')).to.equal(3);
    expect(at(after, 'pollgate_auth_failures_total') - at(before, 'pollgate_auth_failures_total')).to.equal(1);
    expect(at(after, 'pollgate_rate_limited_total') - at(before, 'pollgate_rate_limited_total')).to.equal(1);
    expect(at(after, 'pollgate_errors_total{code="rate_limited"}') - at(before, 'pollgate_errors_total{code="rate_limited"}')).to.equal(1);
  });

  it('counts gaps reported to a poll', async () => {
    const small = await startGateway({ retention: { overrides: [{ prefix: 'gap:', maxLength: 1 }] } });
    try {
      const start = await poll(small.url, small.apiKey, { streams: 'gap:1', timeout: 0 });
      await sendAll(small.url, small.apiKey, 'gap:1', [1, 2, 3]);
      const r = await poll(small.url, small.apiKey, { streams: 'gap:1', cursor: start.cursor, timeout: 0 });
      expect(r.gaps).to.have.length(1);
      expect((await scrape(`${small.url}/metrics`, small.apiKey)).get('pollgate_gaps_total{transport="poll"}')).to.equal(1);
    } finally {
      await small.shutdown();
    }
  });

  it('charts in docs/grafana-dashboard.json only metrics the gateway exports', async () => {
    const dashboard = readFileSync(fileURLToPath(new URL('../../docs/grafana-dashboard.json', import.meta.url)), 'utf8');
    JSON.parse(dashboard);
    const used = new Set(dashboard.match(/pollgate_[a-z0-9_]+/g)!.map((n) => n.replace(/_(bucket|count|sum)$/, '')));
    const res = await fetch(`${gw.url}/metrics`, { headers: { Authorization: `Bearer ${gw.apiKey}` } });
    const families = new Set([...(await res.text()).matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]));
    expect(used.size).to.be.above(10);
    for (const name of used) expect(families.has(name), name).to.equal(true);
  });

  it('refuses client tokens (403) and missing credentials (401)', async () => {
    const token = await gw.token({ sub: 'alice', streams: ['*'] });
    await expectFetchError(await fetch(`${gw.url}/metrics`, { headers: { Authorization: `Bearer ${token}` } }), 403, 'forbidden');
    await expectFetchError(await fetch(`${gw.url}/metrics`), 401, 'unauthorized');
  });

  it('serves the same metrics without credentials on metrics.port, and nothing else there', async () => {
    const port = gw.metricsServer!.port;
    expect(port).to.be.above(0);
    const m = await scrape(`http://127.0.0.1:${port}/metrics`);
    expect(m.has('pollgate_parked_polls')).to.equal(true);
    expect((await fetch(`http://127.0.0.1:${port}/poll`)).status).to.equal(404);
  });
});
