/**
 * static/pollgate.js run in Node against a real gateway: backoff, dedupe, resets, the outbox, auth.
 */
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { readStream, sendAs } from '../support/api.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { loadPollgate, makeNet, MemoryStorage, until, type ClientMessage, type Net } from '../support/node-client.js';
import { sharedRedis, uniquePrefix } from '../support/redis.js';

const FAST = { backoffBase: 20, backoffCap: 200, pollTimeout: 5, sendTimeout: 3000 };
let streamCount = 0;
const freshStream = () => `room:client-${process.pid}-${++streamCount}`;

describe('Pollgate (static/pollgate.js in Node)', () => {
  let gw: TestGateway;
  let token: string;
  const clients: { close(): void }[] = [];

  before(async () => {
    gw = await startGateway();
    token = await gw.token({ sub: 'alice', streams: ['room:*'], pub: ['room:*'] });
  });
  afterEach(() => {
    while (clients.length) clients.pop()!.close();
  });
  after(async () => {
    await gw.shutdown();
  });

  /** A client in a page of its own; pass `tab` (sessionStorage) to stand for a reload of the same tab, `local` for the same browser. */
  function connect(net: Net, options: Record<string, unknown>, tab?: MemoryStorage, local?: MemoryStorage) {
    const Pollgate = loadPollgate(net, local, tab);
    const client = new Pollgate({ url: gw.url, token, ...FAST, ...options });
    const got: ClientMessage[] = [];
    const states: string[] = [];
    client.on('message', (m: ClientMessage) => got.push(m));
    client.on('state', (s: string) => states.push(s));
    clients.push(client);
    return { client, got, states };
  }

  describe('Pollgate.backoff', () => {
    it('stays below min(cap, base * 2^attempt), with full jitter down to 0', () => {
      const Pollgate = loadPollgate(makeNet());
      expect(Pollgate.backoff(0, 100, 1000, () => 0.999)).to.equal(99);
      expect(Pollgate.backoff(3, 100, 1000, () => 0.999)).to.equal(799);
      expect(Pollgate.backoff(4, 100, 1000, () => 0.999)).to.equal(999);
      expect(Pollgate.backoff(50, 100, 30_000, () => 0.5)).to.equal(15_000);
      expect(Pollgate.backoff(5, 100, 1000, () => 0)).to.equal(0);
    });
  });

  it('goes online and delivers messages in order', async () => {
    const stream = freshStream();
    const { client, got } = connect(makeNet(), { streams: [stream] });
    await until('online', () => client.state === 'online');
    for (let i = 1; i <= 5; i++) await sendAs(gw.url, gw.apiKey, stream, { n: i });
    await until('5 messages', () => got.length >= 5);
    expect(got.map((m) => m.data)).to.deep.equal([1, 2, 3, 4, 5].map((n) => ({ n })));
    expect(client.transport).to.equal('xhr');
  });

  it('delivers each message once when an answer repeats messages already delivered', async () => {
    const stream = freshStream();
    const net = makeNet();
    let firstBatch: unknown[] | undefined;
    net.mutate = (url, text) => {
      if (!url.includes('/poll')) return text;
      const json = JSON.parse(text);
      if (!firstBatch && json.messages.length) firstBatch = json.messages;
      else if (firstBatch && json.messages.length) json.messages = [...firstBatch, ...json.messages];
      return JSON.stringify(json);
    };
    const { client, got } = connect(net, { streams: [stream] });
    await until('online', () => client.state === 'online');
    await sendAs(gw.url, gw.apiKey, stream, 'a');
    await until('first', () => got.length >= 1);
    await sendAs(gw.url, gw.apiKey, stream, 'b');
    await sendAs(gw.url, gw.apiKey, stream, 'c');
    await until('three', () => got.length >= 3);
    await sendAs(gw.url, gw.apiKey, stream, 'd');
    await until('four', () => got.length >= 4);
    expect(got.map((m) => m.data)).to.deep.equal(['a', 'b', 'c', 'd']);
  });

  it('resumes from its cursor after the network was down, losing nothing', async () => {
    const stream = freshStream();
    const net = makeNet();
    const { client, got, states } = connect(net, { streams: [stream] });
    await until('online', () => client.state === 'online');
    await sendAs(gw.url, gw.apiKey, stream, 1);
    await until('first', () => got.length === 1);
    net.down = true;
    client.subscribe('room:nudge'); // restarts the poll, which now fails
    await until('reconnecting', () => client.state === 'reconnecting');
    await sendAs(gw.url, gw.apiKey, stream, 2);
    await sendAs(gw.url, gw.apiKey, stream, 3);
    net.down = false;
    await until('three', () => got.length >= 3);
    expect(got.map((m) => m.data)).to.deep.equal([1, 2, 3]);
    expect(states).to.deep.equal(['online', 'reconnecting', 'online']);
  });

  it('keeps positions of other streams when subscribing, and stops on unsubscribe', async () => {
    const a = freshStream();
    const b = freshStream();
    const { client, got } = connect(makeNet(), { streams: [a] });
    await until('online', () => client.state === 'online');
    await sendAs(gw.url, gw.apiKey, a, 'a1');
    await until('a1', () => got.length === 1);
    client.subscribe([b]);
    await sendAs(gw.url, gw.apiKey, a, 'a2');
    await until('a2', () => got.length === 2);
    await sendAs(gw.url, gw.apiKey, b, 'b1');
    await until('b1', () => got.length === 3);
    client.unsubscribe(b);
    await sendAs(gw.url, gw.apiKey, b, 'b2');
    await sendAs(gw.url, gw.apiKey, a, 'a3');
    await until('a3', () => got.length >= 4);
    expect(got.map((m) => m.data)).to.deep.equal(['a1', 'a2', 'b1', 'a3']);
  });

  it('keeps each tab\'s queued sends in its own storage: after reloads every message is sent once, in order', async () => {
    const stream = freshStream();
    const net = makeNet();
    net.down = true;
    const local = new MemoryStorage();
    const tabs = [new MemoryStorage(), new MemoryStorage()];
    const outboxOf = (tab: MemoryStorage) => [...tab.items].find(([k]) => k.endsWith(':outbox'))?.[1];
    const first = tabs.map((tab) => connect(net, { streams: [stream] }, tab, local));
    for (const text of ['a1', 'a2', 'a3']) first[0]!.client.send(stream, text);
    for (const text of ['b1', 'b2']) first[1]!.client.send(stream, text);
    // Every attempt of a tab's first message (1 + sendRetries) keeps the same idempotency id.
    await until('retries', () => net.requests.filter((r) => r.url.endsWith('/send')).length >= 8);
    const sendBodies = net.requests.filter((r) => r.url.endsWith('/send')).map((r) => JSON.parse(r.body!));
    expect(new Set(sendBodies.map((b) => b.id)).size).to.equal(2);
    expect(tabs.map((tab) => JSON.parse(outboxOf(tab)!).map((m: { data: string }) => m.data))).to.deep.equal([['a1', 'a2', 'a3'], ['b1', 'b2']]);
    for (const f of first) f.client.close();

    net.down = false;
    const reloaded = tabs.map((tab) => connect(net, { streams: [stream] }, tab, local));
    await until('outboxes flushed', () => reloaded.every((r, i) => r.client.pending().length === 0 && outboxOf(tabs[i]!) === undefined));
    const stored = (await readStream(gw.url, gw.apiKey, stream)).map((m) => m.data as string);
    expect(stored.filter((d) => d[0] === 'a')).to.deep.equal(['a1', 'a2', 'a3']);
    expect(stored.filter((d) => d[0] === 'b')).to.deep.equal(['b1', 'b2']);
  });

  it('resumes a reloaded page from its cursor (kept per tab), and a new tab from now; `cursor` resumes from an app\'s own', async () => {
    const stream = freshStream();
    const tab = new MemoryStorage();
    const first = connect(makeNet(), { streams: [stream] }, tab);
    await until('online', () => first.client.state === 'online');
    for (const n of [1, 2, 3]) await sendAs(gw.url, gw.apiKey, stream, n);
    await until('1-3', () => first.got.length === 3);
    const cursor = first.client.cursor;
    first.client.close();
    for (const n of [4, 5, 6]) await sendAs(gw.url, gw.apiKey, stream, n);

    const reloaded = connect(makeNet(), { streams: [stream] }, tab);
    const other = connect(makeNet(), { streams: [stream] });
    const own = connect(makeNet(), { streams: [stream], cursor });
    await until('4-6 twice', () => reloaded.got.length === 3 && own.got.length === 3);
    await until('the new tab online', () => other.client.state === 'online');
    await sendAs(gw.url, gw.apiKey, stream, 7);
    await until('7 everywhere', () => [reloaded, other, own].every((c) => c.got.some((m) => m.data === 7)));
    expect(reloaded.got.map((m) => m.data)).to.deep.equal([4, 5, 6, 7]);
    expect(own.got.map((m) => m.data)).to.deep.equal([4, 5, 6, 7]);
    expect(other.got.map((m) => m.data)).to.deep.equal([7]);
  });

  it('sends with callbacks and retries a send whose first attempts fail, without duplicating it', async () => {
    const stream = freshStream();
    const net = makeNet();
    const { client } = connect(net, { streams: [stream] });
    await until('online', () => client.state === 'online');
    let failures = 2;
    // The gateway stores the message but the answer is lost twice: the retries must not duplicate it.
    net.mutate = (url, text) => {
      if (url.endsWith('/send') && failures-- > 0) return '<html>captive portal</html>';
      return text;
    };
    const result = await new Promise<{ seq: number; duplicate?: boolean }>((resolve, reject) =>
      client.send(stream, 'once', (err: Error | null, r: { seq: number }) => (err ? reject(err) : resolve(r))),
    );
    expect(result.duplicate).to.equal(true);
    expect((await readStream(gw.url, gw.apiKey, stream)).map((m) => m.data)).to.deep.equal(['once']);
  });

  it('raises auth_error on 401 and retries with the token from getToken', async () => {
    const stream = freshStream();
    const Pollgate = loadPollgate(makeNet());
    const authErrors: string[] = [];
    let calls = 0;
    const client = new Pollgate({
      url: gw.url,
      streams: [stream],
      token: 'expired-or-wrong-token-0000000000',
      getToken: (cb: (err: Error | null, token?: string) => void) => {
        calls++;
        setTimeout(() => cb(null, token), 10);
      },
      ...FAST,
    });
    clients.push(client);
    const got: ClientMessage[] = [];
    client.on('auth_error', (e: { code: string }) => authErrors.push(e.code));
    client.on('message', (m: ClientMessage) => got.push(m));
    await until('online', () => client.state === 'online');
    expect(authErrors[0]).to.equal('unauthorized');
    expect(calls).to.equal(1);
    await sendAs(gw.url, gw.apiKey, stream, 'after-auth');
    await until('message', () => got.length === 1);
  });

  it('shares one poll between pages with share: true over storage events; a page that missed a batch catches up; the leader closing hands over', async () => {
    const stream = freshStream();
    // One localStorage for the browser; no BroadcastChannel here, so batches travel by storage events.
    const local = new MemoryStorage();
    const nets = [makeNet(), makeNet()];
    const pages = nets.map((net) => connect(net, { streams: [stream], share: true }, new MemoryStorage(), local));
    const transports = () => pages.map((p) => p.client.transport);
    await until('a leader, a follower, one parked poll', () => pages.every((p) => p.client.state === 'online') && transports().includes('shared') && gw.longPolls.size === 1);
    const follower = transports().indexOf('shared');
    const leader = 1 - follower;
    expect(transports()[leader]).to.equal('xhr');

    let lost = 0;
    local.drop = (e, page) => {
      if (page !== follower || !e.key.endsWith(':share') || lost > 0) return false;
      lost++;
      return true;
    };
    await sendAs(gw.url, gw.apiKey, stream, 'a');
    await until('a at the leader', () => pages[leader]!.got.length === 1);
    const followerPolls = nets[follower]!.requests.filter((r) => r.url.includes('/poll')).length;
    await sendAs(gw.url, gw.apiKey, stream, 'b');
    await until('a and b everywhere', () => pages.every((p) => p.got.length === 2));
    expect(lost, 'batches the follower never heard').to.equal(1);
    expect(nets[follower]!.requests.filter((r) => r.url.includes('/poll')).length - followerPolls, 'catch-up polls').to.equal(1);

    pages[leader]!.client.close();
    await until('the follower leads', () => pages[follower]!.client.transport === 'xhr' && gw.longPolls.size === 1);
    await sendAs(gw.url, gw.apiKey, stream, 'c');
    await until('c', () => pages[follower]!.got.length === 3);
    expect(pages.map((p) => p.got.map((m) => m.data))).to.deep.equal([...(follower === 0 ? [['a', 'b', 'c'], ['a', 'b']] : [['a', 'b'], ['a', 'b', 'c']])]);
  });

  it('reports a forbidden send to its callback and drops it from the outbox', async () => {
    const { client } = connect(makeNet(), { streams: [freshStream()] });
    const err = await new Promise<{ code: string }>((resolve) => client.send('private:x', 1, (e: { code: string }) => resolve(e)));
    expect(err.code).to.equal('forbidden');
    expect(client.pending()).to.have.length(0);
  });
});

describe('Pollgate over a Redis store', () => {
  let gw: TestGateway;
  let redis: Redis;
  let prefix: string;

  before(async () => {
    const server = await sharedRedis();
    prefix = uniquePrefix();
    gw = await startGateway({ redis: { url: server.url, keyPrefix: prefix } });
    redis = new Redis(server.url);
  });
  after(async () => {
    redis.disconnect();
    await gw.shutdown();
  });

  it('emits reset and delivers the new log from seq 1 when a stream was lost', async () => {
    const stream = freshStream();
    const token = await gw.token({ sub: 'bob', streams: ['room:*'] });
    const Pollgate = loadPollgate(makeNet());
    const client = new Pollgate({ url: gw.url, token, streams: [stream], ...FAST });
    const got: ClientMessage[] = [];
    const resets: string[] = [];
    client.on('message', (m: ClientMessage) => got.push(m));
    client.on('reset', (r: { stream: string }) => resets.push(r.stream));
    try {
      await until('online', () => client.state === 'online');
      for (const d of ['old1', 'old2', 'old3']) await sendAs(gw.url, gw.apiKey, stream, d);
      await until('old log', () => got.length === 3);
      await redis.del(`${prefix}{${stream}}:meta`, `${prefix}{${stream}}:log`, `${prefix}{${stream}}:ids`);
      await sendAs(gw.url, gw.apiKey, stream, 'new1');
      await until('new log', () => got.length === 4);
      expect(resets).to.deep.equal([stream]);
      expect(got.map((m) => [m.seq, m.data])).to.deep.equal([[1, 'old1'], [2, 'old2'], [3, 'old3'], [1, 'new1']]);
    } finally {
      client.close();
    }
  });
});
