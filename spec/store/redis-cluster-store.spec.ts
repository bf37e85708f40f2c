/**
 * The store on the run's Redis Cluster (3 masters, 3 replicas): the same contract as a single Redis,
 * no CROSSSLOT, and a long-poll woken through the cluster, with sharded pub/sub and with classic.
 * The contract runs with sharded pub/sub only: with classic PUBLISH a cluster forwards a wake-up
 * over its bus, so a subscriber on another node may still get one published just before it
 * subscribed (a stale hint waiters ignore, but the contract's "the next wake-up is this one" does not).
 */
import { expect } from 'chai';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { poll, sendOk } from '../support/http.js';
import { sharedRedisCluster } from '../support/redis-cluster.js';
import { uniquePrefix } from '../support/redis.js';
import { waitFor } from '../support/wait.js';
import { storeContract, type StoreFactory } from './contract.js';
import { redisHarness } from './redis-harness.js';

const clusterFactory: StoreFactory = async (retention) => {
  const cluster = await sharedRedisCluster();
  return redisHarness(cluster.url, true, cluster.client(), retention);
};

describe('Redis Cluster', function () {
  this.timeout(30_000);
  before(async function () {
    this.timeout(60_000);
    await sharedRedisCluster();
  });

  storeContract('redis cluster', clusterFactory);

  for (const shardedPubSub of [true, false]) describe(`long-poll through the cluster (${shardedPubSub ? 'sharded' : 'classic'} pub/sub)`, () => {
    let gw: TestGateway;
    before(async () => {
      const cluster = await sharedRedisCluster();
      gw = await startGateway({ redis: { url: cluster.url, cluster: true, shardedPubSub, keyPrefix: uniquePrefix() } });
    });
    after(async () => gw?.shutdown());

    it('wakes parked polls on streams whose keys live on different masters', async () => {
      const cluster = await sharedRedisCluster();
      const admin = cluster.client();
      // Streams spread over the slots of all three masters.
      const streams = Array.from({ length: 12 }, (_, i) => `cl:${i}`);
      try {
        const starts = await Promise.all(streams.map((s) => poll(gw.url, gw.apiKey, { streams: s, timeout: 0 })));
        const parked = streams.map((s, i) => poll(gw.url, gw.apiKey, { streams: s, cursor: starts[i]!.cursor, timeout: 20 }));
        await waitFor(() => gw.longPolls.size === streams.length, 'every poll to park');
        await Promise.all(streams.map((s) => sendOk(gw.url, gw.apiKey, { stream: s, data: s })));
        const got = await Promise.all(parked);
        got.forEach((g, i) => expect(g.messages.map((m) => m.data)).to.deep.equal([streams[i]]));
        const owners = new Set(await Promise.all(streams.map(async (s) => {
          const slot = Number(await admin.call('CLUSTER', 'KEYSLOT', `{${s}}`));
          const shards = (await admin.call('CLUSTER', 'SLOTS')) as [number, number, [string, number]][];
          return shards.find(([lo, hi]) => slot >= lo && slot <= hi)![2][1];
        })));
        expect(owners.size, 'the streams should cover every master').to.equal(3);
      } finally {
        admin.disconnect();
      }
    });

    it('answers a batch sent to many streams (one script per stream, no CROSSSLOT)', async () => {
      const streams = Array.from({ length: 10 }, (_, i) => `multi:${i}`);
      const sent = await sendOk(gw.url, gw.apiKey, { streams, data: 'fan-out' });
      expect(sent.results).to.have.length(10);
      const r = await poll(gw.url, gw.apiKey, { streams: streams.join(','), since: 'earliest', timeout: 0 });
      expect(r.messages).to.have.length(10);
    });
  });
});
