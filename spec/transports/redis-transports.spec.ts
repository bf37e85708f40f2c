/**
 * WebSocket and SSE over the Redis store: resets seen live, and delivery across gateway processes.
 */
import { expect } from 'chai';
import { RedisKeys } from '../../lib/store/redis-keys.js';
import { spawnGateway, startGateway, TEST_API_KEY, type ChildGateway, type TestGateway } from '../support/gateway.js';
import { redisClient, sharedRedis, uniquePrefix } from '../support/redis.js';
import { poll, sendAll, SseClient, WsClient } from '../support/clients.js';

describe('WebSocket and SSE with the Redis store', () => {
  let gw: TestGateway | undefined;
  let prefix: string;
  const clients: Array<{ close(): unknown }> = [];
  const children: ChildGateway[] = [];

  beforeEach(async () => {
    prefix = uniquePrefix();
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await gw?.shutdown();
    gw = undefined;
    await Promise.all(children.splice(0).map((c) => c.kill()));
  });

  /** Deletes every key of a stream, as if its log and meta had expired: the next append starts a new epoch. */
  async function forget(stream: string): Promise<void> {
    const admin = redisClient((await sharedRedis()).url);
    const keys = new RedisKeys(prefix);
    try {
      await admin.del(keys.log(stream), keys.ids(stream), keys.meta(stream));
    } finally {
      admin.disconnect();
    }
  }

  it('reports a reset to a live WebSocket subscriber when the log restarts with a new epoch', async () => {
    gw = await startGateway({ redis: { url: (await sharedRedis()).url, keyPrefix: prefix } });
    const c = await WsClient.open(gw.url, { token: gw.apiKey });
    clients.push(c);
    await c.subscribe(['rs']);
    await sendAll(gw.url, gw.apiKey, 'rs', ['old1', 'old2']);
    expect((await c.messages(2)).messages.map((m) => m.seq)).to.deep.equal([1, 2]);
    await forget('rs');
    await sendAll(gw.url, gw.apiKey, 'rs', ['new1']);
    const { frames, messages } = await c.messages(1);
    expect(frames[0]!.resets).to.deep.equal(['rs']);
    expect(messages.map((m) => [m.seq, m.data])).to.deep.equal([[1, 'new1']]);
  });

  it('sends an SSE reset event whose id resumes in the new epoch', async () => {
    gw = await startGateway({ redis: { url: (await sharedRedis()).url, keyPrefix: prefix } });
    await sendAll(gw.url, gw.apiKey, 'rse', ['a', 'b']);
    const { cursor } = await poll(gw.url, gw.apiKey, { streams: 'rse', since: 'earliest' });
    await forget('rse');
    await sendAll(gw.url, gw.apiKey, 'rse', ['c']);
    const es = new SseClient(`${gw.url}/sse?streams=rse&token=${gw.apiKey}&cursor=${cursor}`);
    clients.push(es);
    const reset = await es.nextOf(['reset', 'message']);
    expect(reset.type).to.equal('reset');
    expect(JSON.parse(reset.data)).to.deep.equal({ stream: 'rse' });
    const msg = await es.next('message');
    expect(JSON.parse(msg.data)).to.include({ seq: 1, data: 'c' });
    // The reset's id is a cursor just before the new epoch's first message.
    const fromReset = await poll(gw.url, gw.apiKey, { streams: 'rse', cursor: reset.lastEventId });
    expect(fromReset.messages.map((m: any) => m.data)).to.deep.equal(['c']);
    expect(fromReset.resets).to.equal(undefined);
  });

  it('delivers to a WebSocket client on one node what is sent to another', async function () {
    this.timeout(30_000);
    const env = { REDIS_URL: (await sharedRedis()).url, POLLGATE_REDIS_PREFIX: prefix };
    const [a, b] = await Promise.all([spawnGateway(env), spawnGateway(env)]);
    children.push(a!, b!);
    const c = await WsClient.open(a!.url, { token: TEST_API_KEY });
    clients.push(c);
    await c.subscribe(['x:1']);
    await sendAll(b!.url, TEST_API_KEY, 'x:1', ['from b', 'again']);
    const { messages } = await c.messages(2);
    expect(messages.map((m) => m.data)).to.deep.equal(['from b', 'again']);
  });
});
