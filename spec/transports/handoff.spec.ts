/**
 * One cursor, every transport: a reader moves /poll -> WebSocket -> SSE -> WebSocket -> SSE -> /poll,
 * each time starting from the cursor the previous transport gave it, and reads each message once.
 * Real clients: the `ws` and `eventsource` npm packages.
 */
import { expect } from 'chai';
import { poll, sendAll, SseClient, WsClient } from '../support/clients.js';
import { startGateway, type TestGateway } from '../support/gateway.js';

describe('cursor hand-off between transports', () => {
  let gw: TestGateway;
  const closers: (() => unknown)[] = [];

  before(async () => {
    gw = await startGateway();
  });
  afterEach(async () => {
    for (const close of closers.splice(0)) await close();
  });
  after(async () => {
    await gw.shutdown();
  });

  async function overWs(streams: string[], cursor: string): Promise<{ data: unknown[]; cursor: string }> {
    const c = await WsClient.open(gw.url, { token: gw.apiKey });
    closers.push(() => c.close());
    await c.subscribe(streams, { cursor });
    const got = await c.messages(1);
    await c.close();
    return { data: got.messages.map((m) => m.data), cursor: got.cursor };
  }

  async function overSse(streams: string[], cursor: string): Promise<{ data: unknown[]; cursor: string }> {
    const es = new SseClient(`${gw.url}/sse?streams=${streams.join(',')}&token=${gw.apiKey}&cursor=${encodeURIComponent(cursor)}`);
    closers.push(() => es.close());
    const e = await es.next('message');
    es.close();
    return { data: [JSON.parse(e.data).data], cursor: e.lastEventId };
  }

  it('continues with the next message on every switch, whichever transport issued the cursor', async () => {
    const streams = ['hand:a', 'hand:b'];
    await sendAll(gw.url, gw.apiKey, 'hand:a', ['m1']);
    const first = await poll(gw.url, gw.apiKey, { streams: streams.join(','), since: 'earliest', timeout: '0' });
    const seen: unknown[] = first.messages.map((m: any) => m.data);
    let cursor: string = first.cursor;
    const hops = [overWs, overSse, overWs, overSse];
    for (let i = 0; i < hops.length; i++) {
      // Alternate streams, so each cursor must carry both positions.
      await sendAll(gw.url, gw.apiKey, streams[(i + 1) % 2]!, [`m${i + 2}`]);
      const got = await hops[i]!(streams, cursor);
      seen.push(...got.data);
      cursor = got.cursor;
    }
    await sendAll(gw.url, gw.apiKey, 'hand:a', ['m6']);
    const last = await poll(gw.url, gw.apiKey, { streams: streams.join(','), cursor, timeout: '0' });
    seen.push(...last.messages.map((m: any) => m.data));
    expect(seen).to.deep.equal(['m1', 'm2', 'm3', 'm4', 'm5', 'm6']);
  });
});
