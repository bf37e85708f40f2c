/**
 * Presence and disconnects on the run's Redis Cluster (lib/store/redis-control.ts, redis-presence.ts,
 * lib/disconnect.ts): keys of one stream share a hash slot, the index and the disconnect record are
 * single keys, control messages go by classic pub/sub. Two in-process gateways on the cluster.
 */
import { expect } from 'chai';
import { startGateway, type TestGateway } from './support/gateway.js';
import { SseClient, WsClient } from './support/clients.js';
import { sharedRedisCluster } from './support/redis-cluster.js';
import { uniquePrefix } from './support/redis.js';

describe('presence and disconnects on a Redis Cluster', function () {
  this.timeout(30_000);
  let a: TestGateway;
  let b: TestGateway;
  before(async function () {
    this.timeout(60_000);
    const cluster = await sharedRedisCluster();
    const config = { redis: { url: cluster.url, cluster: true, keyPrefix: uniquePrefix() }, presence: { streams: ['c:*'] } };
    [a, b] = await Promise.all([startGateway(config), startGateway(config)]);
  });
  after(() => Promise.all([a?.shutdown(), b?.shutdown()]));

  it('sees a WebSocket subject on one node and an SSE subject on the other from either, and disconnects across nodes', async () => {
    const [ann, bob] = await Promise.all([a.token({ sub: 'ann', streams: ['c:*'] }), a.token({ sub: 'bob', streams: ['c:*'] })]);
    const ws = await WsClient.open(a.url, { token: ann });
    await ws.subscribe(['c:1']);
    const es = new SseClient(`${b.url}/sse?streams=c:1&token=${bob}`);
    try {
      await es.next('ready');
      for (const gw of [a, b]) {
        const end = Date.now() + 5000;
        let body: any;
        do {
          body = await (await fetch(`${gw.url}/presence?stream=c:1`, { headers: { Authorization: `Bearer ${gw.apiKey}` } })).json();
        } while (body.count < 2 && Date.now() < end && (await new Promise((r) => setTimeout(r, 25)), true));
        expect(body.subjects).to.deep.equal([{ sub: 'ann', connections: 1 }, { sub: 'bob', connections: 1 }]);
      }
      const res = await fetch(`${b.url}/disconnect`, { method: 'POST', headers: { Authorization: `Bearer ${b.apiKey}`, 'content-type': 'application/json' }, body: '{"sub":"ann"}' });
      expect(res.status).to.equal(200);
      expect((await ws.closed).code).to.equal(4403);
    } finally {
      es.close();
      await ws.close();
    }
  });
});
