import { expect } from 'chai';
import type { ConfigInput } from '../../lib/config.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { poll, sendAll, SseClient, until } from '../support/clients.js';


/** Reads a raw event stream until `done(text so far)` holds or the server ends it. */
async function readStream(res: Response, done: (text: string) => boolean): Promise<{ text: string; ended: boolean }> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  for (;;) {
    const { value, done: ended } = await reader.read();
    if (ended) return { text, ended: true };
    text += decoder.decode(value, { stream: true });
    if (done(text)) {
      await reader.cancel();
      return { text, ended: false };
    }
  }
}

describe('Server-Sent Events transport (GET /sse)', () => {
  let gw: TestGateway;
  const clients: SseClient[] = [];
  const aborts: AbortController[] = [];

  function connect(query: string): SseClient {
    const c = new SseClient(`${gw.url}/sse?${query}`);
    clients.push(c);
    return c;
  }

  function fetchStream(query: string, headers: Record<string, string> = {}): Promise<Response> {
    const ac = new AbortController();
    aborts.push(ac);
    return fetch(`${gw.url}/sse?${query}`, { headers, signal: ac.signal });
  }

  async function restart(overrides: ConfigInput): Promise<void> {
    await gw.shutdown();
    gw = await startGateway(overrides);
  }

  beforeEach(async () => {
    gw = await startGateway();
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    for (const ac of aborts.splice(0)) ac.abort();
    await gw.shutdown();
  });

  it('answers with an uncached event stream that starts with retry:', async () => {
    await restart({ sse: { retryMs: 1234 } });
    const res = await fetchStream(`streams=h&token=${gw.apiKey}`);
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.equal('text/event-stream; charset=utf-8');
    expect(res.headers.get('cache-control')).to.equal('no-store');
    expect(res.headers.get('x-accel-buffering')).to.equal('no');
    const { text } = await readStream(res, (t) => t.includes('event: ready'));
    expect(text.startsWith('retry: 1234\n\n')).to.equal(true);
  });

  it('delivers messages in order, each with the cursor after it as its id', async () => {
    const es = connect(`streams=s1,s2&token=${gw.apiKey}`);
    await es.next('ready');
    await sendAll(gw.url, gw.apiKey, 's1', ['a', 'b']);
    await sendAll(gw.url, gw.apiKey, 's2', ['c']);
    const got = [await es.next('message'), await es.next('message'), await es.next('message')];
    expect(got.map((e) => JSON.parse(e.data).data)).to.deep.equal(['a', 'b', 'c']);
    // The first message's id resumes right after it, on both streams.
    const fromFirst = await poll(gw.url, gw.apiKey, { streams: 's1,s2', cursor: got[0]!.lastEventId });
    expect(fromFirst.messages.map((m: any) => m.data)).to.deep.equal(['b', 'c']);
    const fromLast = await poll(gw.url, gw.apiKey, { streams: 's1,s2', cursor: got[2]!.lastEventId });
    expect(fromLast.messages).to.deep.equal([]);
  });

  it('reconnects with Last-Event-ID after the server ends a stream, with no loss and no duplicate', async function () {
    this.timeout(20_000);
    await restart({ sse: { maxLifetimeMs: 150, retryMs: 10 } });
    await sendAll(gw.url, gw.apiKey, 'life', [0]);
    // The cursor parameter stays in the URL on every reconnect: Last-Event-ID must win over it.
    const { cursor } = await poll(gw.url, gw.apiKey, { streams: 'life', since: 'earliest' });
    const es = connect(`streams=life&token=${gw.apiKey}&cursor=${cursor}`);
    await es.next('ready');
    const total = 60;
    for (let i = 1; i <= total; i++) {
      await sendAll(gw.url, gw.apiKey, 'life', [i]);
      await new Promise((r) => setTimeout(r, 5)); // a steady rate, so sends straddle several reconnects
    }
    const got: number[] = [];
    while (got.length < total) got.push(JSON.parse((await es.next('message')).data).data);
    expect(got).to.deep.equal(Array.from({ length: total }, (_, i) => i + 1));
    expect(es.opens).to.be.at.least(2);
  });

  it('sends a gap event whose id resumes after the gap, then the retained messages', async () => {
    await restart({ retention: { overrides: [{ prefix: 'g:', maxLength: 3 }] } });
    await sendAll(gw.url, gw.apiKey, 'g:1', [1, 2]);
    const { cursor } = await poll(gw.url, gw.apiKey, { streams: 'g:1', since: 'earliest' });
    await sendAll(gw.url, gw.apiKey, 'g:1', [3, 4, 5, 6, 7]);
    const es = connect(`streams=g:1&token=${gw.apiKey}&cursor=${cursor}`);
    const gap = await es.nextOf(['gap', 'message']);
    expect(gap.type).to.equal('gap');
    expect(JSON.parse(gap.data)).to.deep.equal({ stream: 'g:1', from: 3, to: 4 });
    const fromGap = await poll(gw.url, gw.apiKey, { streams: 'g:1', cursor: gap.lastEventId });
    expect(fromGap.messages.map((m: any) => m.data)).to.deep.equal([5, 6, 7]);
    expect(fromGap.gaps).to.equal(undefined);
    const msgs = [await es.next('message'), await es.next('message'), await es.next('message')];
    expect(msgs.map((e) => JSON.parse(e.data).seq)).to.deep.equal([5, 6, 7]);
  });

  it('writes a keep-alive `ping` event (no id, so Last-Event-ID stays) every keepAliveMs', async () => {
    await restart({ sse: { keepAliveMs: 30 } });
    const res = await fetchStream(`streams=k&token=${gw.apiKey}`);
    const { text } = await readStream(res, (t) => t.split('\n\nevent: ping\ndata: {}\n\n').length > 2);
    expect(text).to.include('\n\nevent: ping\ndata: {}\n\n');
  });

  it('releases the stream, its waiters and its timers when the client goes away', async () => {
    const es = connect(`streams=r1,r2&token=${gw.apiKey}`);
    await es.next('ready');
    expect(gw.sse.size).to.equal(1);
    expect(gw.registry.size).to.equal(2);
    es.close();
    await until(() => gw.sse.size === 0);
    expect(gw.registry.size).to.equal(0);
    expect(gw.sse.timers).to.equal(0);
  });

  it('answers HEAD without opening a stream', async () => {
    const res = await fetch(`${gw.url}/sse?streams=h&token=${gw.apiKey}`, { method: 'HEAD' });
    expect(res.status).to.equal(200);
    expect(gw.sse.size).to.equal(0);
  });

  it('refuses a bad token with 401 and a bad cursor with 400, as JSON', async () => {
    const unauth = await fetch(`${gw.url}/sse?streams=a&token=nope`);
    expect(unauth.status).to.equal(401);
    expect((await unauth.json()).error.code).to.equal('unauthorized');
    const badCursor = await fetch(`${gw.url}/sse?streams=a&token=${gw.apiKey}`, { headers: { 'Last-Event-ID': 'garbage!' } });
    expect(badCursor.status).to.equal(400);
    expect((await badCursor.json()).error.code).to.equal('invalid_cursor');
    const token = await gw.token({ sub: 'u', streams: ['mine'] });
    const forbidden = await fetch(`${gw.url}/sse?streams=yours&token=${token}`);
    expect(forbidden.status).to.equal(403);
  });

  it('answers a request while draining with an empty stream and Connection: close, so EventSource retries elsewhere', async () => {
    await restart({ sse: { retryMs: 777 } });
    await gw.sse.shutdown(); // the SSE hub alone: the server still accepts the request
    const res = await fetch(`${gw.url}/sse?streams=d&token=${gw.apiKey}`);
    expect(res.status).to.equal(200);
    expect(res.headers.get('connection')).to.equal('close');
    expect(res.headers.get('content-type')).to.equal('text/event-stream; charset=utf-8');
    expect(await res.text()).to.equal('retry: 777\n\n');
  });

  it('ends every stream promptly on shutdown', async () => {
    const res = await fetchStream(`streams=sd&token=${gw.apiKey}`);
    const reading = readStream(res, () => false);
    await until(() => gw.sse.size === 1);
    const started = Date.now();
    await gw.shutdown();
    expect((await reading).ended).to.equal(true);
    expect(Date.now() - started).to.be.below(2000);
    expect(gw.sse.size).to.equal(0);
    expect(gw.registry.size).to.equal(0);
  });
});
