/**
 * Sharded pub/sub on the run's real Redis Cluster (3 masters, 3 replicas): wake-ups by SPUBLISH on
 * the stream's own shard and never PUBLISH, SSUBSCRIBE batched per slot on one connection per
 * master, and what happens when a subscription stops hearing its shard (a dropped connection, a
 * slot migrated away, a slot map that names another owner): subscribe where the slot is now and
 * re-read, so a wake-up lost meanwhile costs latency, never a message.
 */
import { expect } from 'chai';
import calculateSlot from 'cluster-key-slot';
import fc from 'fast-check';
import type { RetentionRule } from '../../lib/config.js';
import { createLogger } from '../../lib/log.js';
import { RedisKeys, streamSlot } from '../../lib/store/redis-keys.js';
import { RedisStore } from '../../lib/store/redis-store.js';
import { ShardedSubscriber } from '../../lib/store/sharded-subscriber.js';
import type { NodeAddress } from '../../lib/store/shard-connection.js';
import { SERVER_SENDER, messageTail, type NewMessage, type WakeHint } from '../../lib/store/store.js';
import { startGateway, testConfig } from '../support/gateway.js';
import { poll, untilParked } from '../support/http.js';
import { freePort } from '../support/ports.js';
import { commandCallsOn, migrateSlot, nodeClient, ownerOf, shards, sharedRedisCluster, type RedisCluster } from '../support/redis-cluster.js';
import { uniquePrefix } from '../support/redis.js';
import { waitFor } from '../support/wait.js';

const log = createLogger('silent');
const RULE: RetentionRule = { maxLength: 1000, ttlSeconds: 3600, metaTtlSeconds: 86400 };

function msg(id: string): NewMessage {
  return { id, sender: SERVER_SENDER, tail: messageTail(id, 1700000000000, JSON.stringify(id)) };
}

interface Heard {
  wakes: { stream: string; hint: WakeHint }[];
  resyncs: (readonly string[] | undefined)[];
}

/** A cluster store (the one under test) that records what its listener hears. */
async function listeningStore(cluster: RedisCluster, keyPrefix: string): Promise<{ store: RedisStore; heard: Heard }> {
  const store = new RedisStore({ url: cluster.url, keyPrefix, cluster: true, commandTimeoutMs: 2000, retention: () => RULE, tailCache: testConfig().redis.tailCache, log });
  await store.connect();
  const heard: Heard = { wakes: [], resyncs: [] };
  store.setListener({ wake: (stream, hint) => heard.wakes.push({ stream, hint }), resync: (streams) => heard.resyncs.push(streams) });
  return { store, heard };
}

async function otherStore(cluster: RedisCluster, keyPrefix: string): Promise<RedisStore> {
  const store = new RedisStore({ url: cluster.url, keyPrefix, cluster: true, commandTimeoutMs: 2000, retention: () => RULE, log });
  await store.connect();
  return store;
}

/** Names of `n` streams that share one slot. */
function streamsInOneSlot(n: number, prefix: string): string[] {
  const bySlot = new Map<number, string[]>();
  for (let i = 0; ; i++) {
    const name = `${prefix}${i}`;
    const same = bySlot.get(streamSlot(name)) ?? [];
    same.push(name);
    bySlot.set(streamSlot(name), same);
    if (same.length === n) return same;
  }
}

/** Ids of the sharded subscriber connections (CLIENT SETNAME pollgate-wake) on a node. */
async function wakeClients(port: number): Promise<string[]> {
  const admin = nodeClient(port);
  try {
    const list = String(await admin.call('CLIENT', 'LIST'));
    return list.split('\n').filter((l) => / name=pollgate-wake /.test(l)).map((l) => /^id=(\d+)/.exec(l)![1]!);
  } finally {
    admin.disconnect();
  }
}

async function shardSubscribers(port: number, channel: string): Promise<number> {
  const admin = nodeClient(port);
  try {
    return ((await admin.call('PUBSUB', 'SHARDNUMSUB', channel)) as [string, number])[1];
  } finally {
    admin.disconnect();
  }
}

const allPorts = (cluster: RedisCluster) => cluster.nodes.map((n) => n.port);

describe('sharded pub/sub on a Redis Cluster', function () {
  this.timeout(30_000);
  let cluster: RedisCluster;
  before(async function () {
    this.timeout(60_000);
    cluster = await sharedRedisCluster();
  });

  describe('streamSlot', () => {
    it('is the cluster slot of the stream\'s keys and of its wake-up channel', async () => {
      const keys = new RedisKeys('pg:');
      const admin = nodeClient(cluster.nodes[0]!.port);
      try {
        for (const stream of ['a', 'room:42', 'é', 'x'.repeat(200)]) {
          for (const key of [keys.meta(stream), keys.log(stream), keys.ids(stream), keys.wakeChannel(stream)]) {
            expect(Number(await admin.call('CLUSTER', 'KEYSLOT', key)), key).to.equal(streamSlot(stream));
          }
        }
      } finally {
        admin.disconnect();
      }
      fc.assert(fc.property(fc.string({ minLength: 1, unit: 'binary' }).filter((s) => !/[{}]/.test(s)), (stream) => {
        expect(streamSlot(stream)).to.equal(calculateSlot(`{${stream}}`));
      }));
    });
  });

  describe('RedisStore in cluster mode', () => {
    let keyPrefix: string;
    let s: { store: RedisStore; heard: Heard };
    let other: RedisStore;
    beforeEach(async () => {
      keyPrefix = uniquePrefix();
      s = await listeningStore(cluster, keyPrefix);
      other = await otherStore(cluster, keyPrefix);
    });
    afterEach(async () => {
      await Promise.all([s.store.close(), other.close()]);
    });

    it('wakes by SPUBLISH on the stream\'s own shard, never by PUBLISH', async () => {
      const streams = Array.from({ length: 12 }, (_, i) => `sp:${i}`);
      await Promise.all(streams.map((st) => s.store.subscribe(st)));
      const masters = (await shards(cluster.nodes[0]!.port)).map((m) => m.port);
      expect(masters).to.have.length(3);
      const [beforeMasters, beforeAll] = await Promise.all([commandCallsOn(masters, ['spublish']), commandCallsOn(allPorts(cluster), ['publish'])]);
      for (const st of streams) await other.append(st, [msg(`${st}-1`)]);
      await waitFor(() => new Set(s.heard.wakes.map((w) => w.stream)).size === streams.length, 'a wake-up for every stream');
      const [afterMasters, afterAll] = await Promise.all([commandCallsOn(masters, ['spublish']), commandCallsOn(allPorts(cluster), ['publish'])]);
      expect(afterMasters.spublish! - beforeMasters.spublish!, 'SPUBLISH on the masters').to.equal(streams.length);
      expect(afterAll.publish! - beforeAll.publish!, 'PUBLISH on any node').to.equal(0);
    });

    it('subscribes with one SSUBSCRIBE per slot, sent together, on one connection per master', async () => {
      const masters = (await shards(cluster.nodes[0]!.port)).map((m) => m.port);
      const before = await Promise.all(masters.map((p) => wakeClients(p)));
      const sameSlot = streamsInOneSlot(3, 'same:');
      const spread = Array.from({ length: 9 }, (_, i) => `spread:${i}`);
      const streams = [...sameSlot, ...spread];
      const slots = new Set(streams.map(streamSlot));
      const owners = new Set(await Promise.all([...slots].map(async (slot) => (await ownerOf(masters[0]!, slot)).port)));
      expect(owners.size, 'the streams should cover every master').to.equal(3);
      const calls = await commandCallsOn(masters, ['ssubscribe', 'subscribe']);
      await Promise.all(streams.map((st) => s.store.subscribe(st)));
      const after = await commandCallsOn(masters, ['ssubscribe', 'subscribe']);
      expect(after.ssubscribe! - calls.ssubscribe!, 'SSUBSCRIBE calls').to.equal(slots.size);
      expect(after.subscribe! - calls.subscribe!, 'classic SUBSCRIBE calls').to.equal(0);
      const now = await Promise.all(masters.map((p) => wakeClients(p)));
      expect(now.map((ids, i) => ids.length - before[i]!.length)).to.deep.equal([1, 1, 1]);
      expect(s.store['sharded']!.connectionCount).to.equal(3);
      const channel = new RedisKeys(keyPrefix).wakeChannel(sameSlot[0]!);
      expect(await shardSubscribers((await ownerOf(masters[0]!, streamSlot(sameSlot[0]!))).port, channel)).to.equal(1);
    });

    it('subscribes a master\'s streams again after its connection dropped, and has them re-read: a wake-up lost meanwhile costs latency, not the message', async () => {
      const stream = 'drop:1';
      const kept = 'drop:kept';
      await Promise.all([s.store.subscribe(stream), s.store.subscribe(kept)]);
      const owner = await ownerOf(cluster.nodes[0]!.port, streamSlot(stream));
      const keptOwner = await ownerOf(cluster.nodes[0]!.port, streamSlot(kept));
      // Until the test allows it, new subscriber connections go nowhere, so the loss is certain.
      const options = s.store['sharded']!['options'] as { address(node: string): NodeAddress };
      const address = options.address;
      const dead = await freePort();
      options.address = (node) => ({ ...address(node), port: dead });
      const admin = nodeClient(owner.port);
      try {
        for (const id of await wakeClients(owner.port)) await admin.call('CLIENT', 'KILL', 'ID', id);
      } finally {
        admin.disconnect();
      }
      const channel = new RedisKeys(keyPrefix).wakeChannel(stream);
      await waitFor(async () => (await shardSubscribers(owner.port, channel)) === 0, 'the subscription to go');
      await other.append(stream, [msg('while-away')]);
      expect(s.heard.wakes.filter((w) => w.stream === stream), 'the wake-up had nowhere to go').to.have.length(0);
      options.address = address;
      await waitFor(() => s.heard.resyncs.some((r) => r?.includes(stream)), 'a re-read of the stream');
      // Only the streams of the master that was lost.
      if (keptOwner.id !== owner.id) expect(s.heard.resyncs.flat()).not.to.include(kept);
      const read = await s.store.read(stream, 0, 10);
      expect(read.messages.map((m) => JSON.parse(m).id)).to.deep.equal(['while-away']);
      await other.append(stream, [msg('after')]);
      await waitFor(() => s.heard.wakes.some((w) => w.stream === stream && w.hint.lastSeq === 2), 'the next wake-up');
    });
  });

  describe('the tail cache in cluster mode', () => {
    it('does not seed from a read the slot map sent to another master than the one its subscription hears', async () => {
      const keyPrefix = uniquePrefix();
      const s = await listeningStore(cluster, keyPrefix);
      const other = await otherStore(cluster, keyPrefix);
      try {
        const stream = 'seed:1';
        const slot = streamSlot(stream);
        await s.store.subscribe(stream);
        await other.append(stream, [msg('a')]);
        await s.store.read(stream, 0, 10);
        expect(s.store.stats().tailStreams, 'seeded where it is subscribed').to.equal(1);
        // Deaf to the move: the old owner's sunsubscribe and the slot map's news are both ignored.
        const sharded = s.store['sharded']!;
        sharded['onDropped'] = () => undefined;
        sharded.checkOwners = () => undefined;
        const all = await shards(cluster.nodes[0]!.port);
        const from = all.find((m) => m.ranges.some(([lo, hi]) => slot >= lo && slot <= hi))!;
        const to = all.find((m) => m !== from)!;
        await migrateSlot(slot, from, to, all.filter((m) => m !== from && m !== to));
        s.store['tail']!.forget();
        // The first read meets MOVED and is answered by the new owner; neither it nor the next seeds.
        const reads = s.store.stats().redisReads;
        await s.store.read(stream, 0, 10);
        await s.store.read(stream, 0, 10);
        expect(s.store.stats().redisReads - reads).to.equal(2);
        expect(s.store.stats().tailStreams).to.equal(0);
      } finally {
        await Promise.all([s.store.close(), other.close()]);
      }
    });
  });

  describe('ShardedSubscriber', () => {
    it('reports a subscription lost, and leaves its node, when the slot map names another owner', async () => {
      const all = await shards(cluster.nodes[0]!.port);
      const channel = `${uniquePrefix()}wake:{owners}`;
      const slot = streamSlot('owners');
      const real = all.find((m) => m.ranges.some(([lo, hi]) => slot >= lo && slot <= hi))!;
      const elsewhere = all.find((m) => m !== real)!;
      let owner = `127.0.0.1:${real.port}`;
      const lost: string[][] = [];
      const sharded = new ShardedSubscriber({
        topology: { owner: () => owner, refresh: async () => undefined },
        address: (node) => ({ host: '127.0.0.1', port: Number(node.split(':')[1]), tls: false }),
        connectTimeoutMs: 2000,
        log,
      }, { message: () => undefined, lost: (channels) => lost.push(channels) });
      try {
        await sharded.subscribe(channel, slot);
        expect(await shardSubscribers(real.port, channel)).to.equal(1);
        sharded.checkOwners();
        expect(lost).to.deep.equal([]);
        owner = `127.0.0.1:${elsewhere.port}`;
        sharded.checkOwners();
        expect(lost).to.deep.equal([[channel]]);
        await waitFor(async () => (await shardSubscribers(real.port, channel)) === 0, 'the SUNSUBSCRIBE on the old owner');
      } finally {
        sharded.close();
      }
    });
  });

  describe('a gateway while a busy stream\'s slot migrates', () => {
    it('answers a parked poll with a message appended on the new owner before the old one let go', async () => {
      const keyPrefix = uniquePrefix();
      const gw = await startGateway({ redis: { url: cluster.url, cluster: true, keyPrefix } });
      const other = await otherStore(cluster, keyPrefix);
      try {
        const stream = 'mig:1';
        const slot = streamSlot(stream);
        await other.append(stream, [msg('before')]);
        const start = await poll(gw.url, gw.apiKey, { streams: stream, since: 'earliest', timeout: 0 });
        expect(start.messages.map((m) => m.id)).to.deep.equal(['before']);
        const pending = poll(gw.url, gw.apiKey, { streams: stream, cursor: start.cursor, timeout: 20 });
        await untilParked(gw.url, gw.apiKey, 1);
        const all = await shards(cluster.nodes[0]!.port);
        const from = all.find((m) => m.ranges.some(([lo, hi]) => slot >= lo && slot <= hi))!;
        const to = all.find((m) => m !== from)!;
        const target = await commandCallsOn([to.port], ['ssubscribe']);
        await migrateSlot(slot, from, to, all.filter((m) => m !== from && m !== to), {
          betweenOwners: async () => {
            // Runs on the new owner: the gateway's subscription is still on the old one, so this wake-up is lost.
            await other.append(stream, [msg('during')]);
          },
        });
        const r = await pending;
        expect(r.messages.map((m) => m.id)).to.deep.equal(['during']);
        expect((await commandCallsOn([to.port], ['ssubscribe'])).ssubscribe, 'SSUBSCRIBE on the new owner').to.be.greaterThan(target.ssubscribe!);
        const next = poll(gw.url, gw.apiKey, { streams: stream, cursor: r.cursor, timeout: 20 });
        await untilParked(gw.url, gw.apiKey, 1);
        await other.append(stream, [msg('after')]);
        expect((await next).messages.map((m) => m.id)).to.deep.equal(['after']);
      } finally {
        await Promise.all([gw.shutdown(), other.close()]);
      }
    });
  });
});
