/**
 * The Redis store through Sentinel (1 primary, 1 replica, 3 sentinels): the store contract on the
 * primary Sentinel names, and a gateway that follows a failover: it finds the new primary,
 * subscribes there and has parked polls re-read, so a message sent after the failover reaches a
 * poll parked before it.
 */
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { poll, send, untilParked } from '../support/http.js';
import { startRedisSentinelGroup, untilCaughtUp, untilPrimaryMoves, type RedisSentinelGroup } from '../support/redis-sentinel.js';
import { uniquePrefix } from '../support/redis.js';
import { storeContract, type StoreFactory } from './contract.js';
import { redisHarness } from './redis-harness.js';

describe('Redis through Sentinel', function () {
  this.timeout(30_000);
  let group: RedisSentinelGroup;
  before(async function () {
    this.timeout(60_000);
    group = await startRedisSentinelGroup();
  });
  after(async () => group?.stop());

  const sentinelFactory: StoreFactory = async (retention) => {
    const admin = new Redis({ sentinels: group.sentinels.map((s) => ({ host: '127.0.0.1', port: Number(s.split(':')[1]) })), name: group.name, maxRetriesPerRequest: 1 });
    return redisHarness('', false, admin, retention, { sentinels: group.sentinels, name: group.name });
  };

  storeContract('redis via sentinel', sentinelFactory);

  describe('a gateway', () => {
    let gw: TestGateway;
    before(async () => {
      gw = await startGateway({ redis: { sentinels: group.sentinels, name: group.name, keyPrefix: uniquePrefix() } });
    });
    after(async () => gw?.shutdown());

    it('follows a failover (the primary SIGKILLed): a poll parked before it is answered by a send after it', async function () {
      // The longest hold, and room for it: the failover and the reconnect once took long enough
      // that a 25 s hold may have ended first (an answer without the reset).
      this.timeout(75_000);
      const began = Date.now();
      const first = await send(gw.url, gw.apiKey, { stream: 'sn:1', data: 'before', id: 'b' });
      expect(first.status).to.equal(200);
      const start = await poll(gw.url, gw.apiKey, { streams: 'sn:1', since: 'earliest', timeout: 0 });
      expect(start.messages.map((m) => m.id)).to.deep.equal(['b']);
      const parked = poll(gw.url, gw.apiKey, { streams: 'sn:1', cursor: start.cursor, timeout: 55 });
      await untilParked(gw.url, gw.apiKey, 1);
      const oldPrimary = await group.primaryPort();
      // Without ackDurability the replica may lag: make sure 'before' survives the failover.
      await untilCaughtUp(oldPrimary, group.nodes.find((n) => n.port !== oldPrimary)!.port);
      // SIGKILL, not SENTINEL FAILOVER: a demoted primary that is still up takes writes until
      // Sentinel reconfigures it (its next INFO check, up to 10 s later), which the new primary never
      // has; that window is the fault suite's, with ackDurability replicas.
      await group.nodes.find((n) => n.port === oldPrimary)!.stop();
      const newPrimary = await untilPrimaryMoves(group, oldPrimary);
      // Sends fail (503) until the gateway reaches the new primary: retry with the same id, as a
      // client would, for up to 45 s: the reconnect takes about 3 s here, but in two full-suite runs
      // of 2026-12-08 it took longer than 20 s, the earlier limit (why is not yet known).
      let after = await send(gw.url, gw.apiKey, { stream: 'sn:1', data: 'after', id: 'a' });
      for (const deadline = Date.now() + 45_000; after.status !== 200 && Date.now() < deadline; ) {
        await new Promise((r) => setTimeout(r, 100));
        after = await send(gw.url, gw.apiKey, { stream: 'sn:1', data: 'after', id: 'a' });
      }
      expect(after.status, `${JSON.stringify(after.json)} ${Math.round((Date.now() - began) / 1000)} s into the test, primary ${oldPrimary} -> ${newPrimary}`).to.equal(200);
      const r = await parked;
      // The new primary is another Redis process: the stream starts a new epoch, told as a reset.
      // What the poll was answered with, and when, if it was not the reset: the failure once seen in CI.
      const seen = `${JSON.stringify(r)} ${Math.round((Date.now() - began) / 1000)} s into the test`;
      expect(r.resets, seen).to.deep.equal(['sn:1']);
      expect(r.messages.map((m) => m.id), seen).to.deep.equal(['b', 'a']);
      const admin = new Redis(newPrimary, '127.0.0.1');
      try {
        expect((await admin.info('replication')).match(/^role:(\w+)/m)![1]).to.equal('master');
      } finally {
        admin.disconnect();
      }
    });
  });
});
