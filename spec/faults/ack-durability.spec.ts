/**
 * redis.ackDurability: a 200 from /send waits for replicas (WAIT) or the AOF fsync (WAITAOF), and
 * a confirmation that falls short is a 503 (the message is stored, its outcome indeterminate).
 */
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { loadConfig } from '../../lib/config.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { send } from '../support/http.js';
import { startRedisServer, type RedisServer } from '../support/redis.js';
import { waitFor } from '../support/wait.js';

describe('redis.ackDurability', function () {
  this.timeout(30_000);

  describe('config', () => {
    const load = (redis: Record<string, unknown>) => () => loadConfig({ env: {}, files: false, overrides: { redis } as never });

    it('reads POLLGATE_REDIS_ACK_DURABILITY and defaults to none', () => {
      expect(loadConfig({ env: {}, files: false }).redis).to.include({ ackDurability: 'none', ackReplicas: 1, ackTimeoutMs: 500 });
      expect(loadConfig({ env: { POLLGATE_REDIS_ACK_DURABILITY: 'replicas' }, files: false }).redis.ackDurability).to.equal('replicas');
    });

    it('refuses an ack timeout that does not fit in the command timeout, and acks with a cluster', () => {
      expect(load({ ackDurability: 'replicas', ackTimeoutMs: 2000, commandTimeoutMs: 2000 })).to.throw(/redis.ackTimeoutMs must be below redis.commandTimeoutMs/);
      expect(load({ ackDurability: 'aof', cluster: true })).to.throw(/redis.ackDurability must be "none" with redis.cluster/);
      expect(load({ ackDurability: 'fsync' })).to.throw(/redis.ackDurability/);
    });
  });

  describe('with a replica', () => {
    let primary: RedisServer;
    let replica: RedisServer;
    let gw: TestGateway;

    before(async () => {
      primary = await startRedisServer({ appendonly: true });
      replica = await startRedisServer({ extraArgs: ['--replicaof', '127.0.0.1', String(primary.port)] });
      const admin = new Redis(primary.url);
      try {
        let info = '';
        await waitFor(() => (void admin.info('replication').then((i) => (info = i)), /^slave0:.*state=online/m.test(info)), 'the replica to come online');
      } finally {
        admin.disconnect();
      }
      // A generous wait: on a loaded 2-core machine a healthy replica's ack has taken over 300 ms.
      gw = await startGateway({ redis: { url: primary.url, keyPrefix: 'ack:', ackDurability: 'replicas', ackTimeoutMs: 1500, commandTimeoutMs: 4000 } });
    });
    after(async () => {
      await gw?.shutdown();
      replica?.process?.kill('SIGCONT');
      await replica?.stop();
      await primary?.stop();
    });

    it('answers 200 once the replica has the message', async () => {
      const r = await send(gw.url, gw.apiKey, { stream: 'a:1', data: 1, id: 'one' });
      expect(r.status).to.equal(200);
      const copy = new Redis(replica.url);
      try {
        expect(await copy.llen('ack:{a:1}:log')).to.equal(1);
      } finally {
        copy.disconnect();
      }
    });

    it('answers 503 with Retry-After when the replica does not confirm in time, and a retry with the same id stores nothing twice', async () => {
      replica.process!.kill('SIGSTOP');
      const started = Date.now();
      const r = await send(gw.url, gw.apiKey, { stream: 'a:2', data: 2, id: 'two' });
      expect(r.status).to.equal(503);
      expect(r.json.error.code).to.equal('store_unavailable');
      expect(Date.now() - started).to.be.below(4000);
      replica.process!.kill('SIGCONT');
      const again = await send(gw.url, gw.apiKey, { stream: 'a:2', data: 2, id: 'two' });
      expect(again.status).to.equal(200);
      expect(again.json.results[0]).to.include({ seq: 1, duplicate: true });
    });

    it('confirms concurrent sends with shared WAITs', async () => {
      const rs = await Promise.all(Array.from({ length: 50 }, (_, i) => send(gw.url, gw.apiKey, { stream: 'a:3', data: i })));
      expect(rs.map((r) => r.status)).to.deep.equal(rs.map(() => 200));
    });
  });

  it('refuses to start with "aof" on a Redis older than 7.2, naming the setting and the version', async function () {
    const redis = await startRedisServer({ appendonly: true });
    try {
      const admin = new Redis(redis.url);
      const version = /redis_version:(\S+)/.exec(await admin.info('server'))![1]!;
      admin.disconnect();
      const [major, minor] = version.split('.').map(Number) as [number, number];
      if (major > 7 || (major === 7 && minor >= 2)) this.skip();
      const err = await startGateway({ redis: { url: redis.url, ackDurability: 'aof' } }).then(
        async (g) => (await g.shutdown(), undefined),
        (e: Error) => e,
      );
      expect(err?.message).to.match(/redis.ackDurability "aof" needs WAITAOF \(Redis >= 7.2\).*runs Redis 7\.0/);
    } finally {
      await redis.stop();
    }
  });
});
