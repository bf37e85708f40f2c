import type { Socket } from 'node:net';
import { expect } from 'chai';
import calculateSlot from 'cluster-key-slot';
import { RedisStore } from '../../lib/store/redis-store.js';
import { RedisKeys } from '../../lib/store/redis-keys.js';
import { createLogger } from '../../lib/log.js';
import { SERVER_SENDER, messageTail } from '../../lib/store/store.js';
import { redisClient, sharedRedis, startRedisServer, uniquePrefix } from '../support/redis.js';
import { storeContract, type StoreFactory } from './contract.js';
import { redisHarness } from './redis-harness.js';
import { countTimeouts } from '../support/timeouts.js';

const log = createLogger('silent');

const redisFactory: StoreFactory = async (retention) => {
  const redis = await sharedRedis();
  return redisHarness(redis.url, false, redisClient(redis.url), retention);
};

storeContract('redis', redisFactory);

describe('RedisStore (Redis only)', () => {
  it('keeps every key of a stream in one cluster slot and gives each a TTL', async () => {
    const redis = await sharedRedis();
    const keyPrefix = uniquePrefix();
    const keys = new RedisKeys(keyPrefix);
    const admin = redisClient(redis.url);
    const store = new RedisStore({ url: redis.url, keyPrefix, cluster: false, commandTimeoutMs: 2000, retention: () => ({ maxLength: 10, ttlSeconds: 100, metaTtlSeconds: 1000 }), log });
    await store.connect();
    try {
      await store.append('room:7', [{ id: 'a', sender: SERVER_SENDER, tail: messageTail('a', 1, '1') }]);
      const slots = [keys.meta('room:7'), keys.log('room:7'), keys.ids('room:7')].map((k) => calculateSlot(k));
      expect(new Set(slots).size).to.equal(1);
      const ttls = await Promise.all([keys.log('room:7'), keys.ids('room:7')].map((k) => admin.pttl(k)));
      for (const t of ttls) expect(t).to.be.within(90_000, 100_000);
      expect(await admin.pttl(keys.meta('room:7'))).to.be.within(990_000, 1_000_000);
    } finally {
      await store.close();
      admin.disconnect();
    }
  });

  it('leaves no command-deadline timer running once closed', async () => {
    const redis = await sharedRedis();
    // A command timeout no other timer in this process has: the Timeouts made for it are the store's.
    const timers = countTimeouts(4_321);
    const store = new RedisStore({ url: redis.url, keyPrefix: uniquePrefix(), cluster: false, commandTimeoutMs: 4_321, retention: () => ({ maxLength: 10, ttlSeconds: 100, metaTtlSeconds: 1000 }), log });
    let closed: Promise<void> | undefined;
    try {
      await store.connect();
      await store.append('t', [{ id: 't0', sender: SERVER_SENDER, tail: messageTail('t0', 1, '0') }]);
      expect(timers.running).to.be.at.least(1);
      await (closed = store.close());
      // The deadline timer is cleared at close; without that it ran on to its end, unref'd.
      // (A cleared Timeout is reported destroyed a turn later.)
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setImmediate(r));
      expect(timers.running).to.equal(0);
    } finally {
      await (closed ?? store.close());
      timers.stop();
    }
  });

  it('sends the commands of one turn of the event loop in one write (lib/store/turn-writes.ts)', async () => {
    const redis = await sharedRedis();
    const store = new RedisStore({ url: redis.url, keyPrefix: uniquePrefix(), cluster: false, commandTimeoutMs: 2000, retention: () => ({ maxLength: 10, ttlSeconds: 100, metaTtlSeconds: 1000 }), log });
    await store.connect();
    try {
      // The first append finds the library or loads it: not counted.
      await store.append('w', [{ id: 'w0', sender: SERVER_SENDER, tail: messageTail('w0', 1, '0') }]);
      const socket = (store as unknown as { cmd: { stream: Socket } }).cmd.stream;
      const writes = { write: 0, writev: 0 };
      const { _write: write, _writev: writev } = socket as unknown as Record<'_write' | '_writev', (...args: unknown[]) => void>;
      Object.assign(socket, {
        _write: (...args: unknown[]) => (writes.write++, write.apply(socket, args)),
        _writev: (...args: unknown[]) => (writes.writev++, writev.apply(socket, args)),
      });
      let results;
      try {
        results = await Promise.all(Array.from({ length: 20 }, (_, i) => store.append(`w${i}`, [{ id: `m${i}`, sender: SERVER_SENDER, tail: messageTail(`m${i}`, 1, String(i)) }])));
      } finally {
        Object.assign(socket, { _write: write, _writev: writev });
      }
      expect(results.map((r) => r[0]!.seq)).to.deep.equal(Array<number>(20).fill(1));
      // Twenty appends sent in one turn: one writev, where each was a write of its own.
      expect(writes).to.deep.equal({ write: 0, writev: 1 });
    } finally {
      await store.close();
    }
  });

  it('runs its scripts on a Redis that does not know them (a fresh server, then SCRIPT FLUSH)', async () => {
    // A private server: SCRIPT FLUSH empties the script cache of everyone using it.
    const redis = await startRedisServer();
    const admin = redisClient(redis.url);
    const store = new RedisStore({ url: redis.url, keyPrefix: uniquePrefix(), cluster: false, commandTimeoutMs: 2000, retention: () => ({ maxLength: 10, ttlSeconds: 100, metaTtlSeconds: 1000 }), log });
    const calls = async (command: 'eval' | 'evalsha') => Number(/calls=(\d+)/.exec((await admin.info('commandstats')).split('\n').find((l) => l.startsWith(`cmdstat_${command}:`)) ?? '')?.[1] ?? 0);
    try {
      await store.connect();
      expect((await store.append('s', [{ id: 'a', sender: SERVER_SENDER, tail: messageTail('a', 1, '1') }]))[0]!.seq).to.equal(1);
      expect((await store.read('s', 0, 10)).messages).to.have.length(1);
      // Each script's first EVALSHA met NOSCRIPT and EVAL ran it; later calls find it cached. (The
      // append's first FCALL found no function: it ran as a script, and its library was loaded.)
      expect(await calls('eval')).to.equal(2);
      expect((await store.append('s', [{ id: 'b', sender: SERVER_SENDER, tail: messageTail('b', 2, '2') }]))[0]!.seq).to.equal(2);
      expect((await store.read('s', 0, 10)).messages).to.have.length(2);
      expect(await calls('eval')).to.equal(2);
      await admin.script('FLUSH');
      expect((await store.append('s', [{ id: 'c', sender: SERVER_SENDER, tail: messageTail('c', 3, '3') }]))[0]!.seq).to.equal(3);
      const read = await store.read('s', 0, 10);
      expect(read.messages).to.have.length(3);
      expect(read.lastSeq).to.equal(3);
      // The read ran as EVAL again; the append is a function now, which SCRIPT FLUSH leaves alone.
      expect(await calls('eval')).to.equal(3);
      await admin.call('FUNCTION', 'FLUSH');
      await admin.script('FLUSH');
      expect((await store.append('s', [{ id: 'd', sender: SERVER_SENDER, tail: messageTail('d', 4, '4') }]))[0]!.seq).to.equal(4);
      expect(await calls('eval')).to.equal(4);
    } finally {
      await store.close();
      admin.disconnect();
      await redis.stop();
    }
  });

  it('fails fast with StoreUnavailableError when Redis is unreachable', async () => {
    const store = new RedisStore({ url: 'redis://127.0.0.1:1', keyPrefix: 'x:', cluster: false, commandTimeoutMs: 500, retention: () => ({ maxLength: 10, ttlSeconds: 100, metaTtlSeconds: 1000 }), log });
    try {
      await store.connect().then(() => expect.fail('connected'), (err: Error) => expect(err.name).to.equal('StoreUnavailableError'));
      const started = Date.now();
      await store.read('s', 0, 1).then(() => expect.fail('read'), (err: Error) => expect(err.name).to.equal('StoreUnavailableError'));
      expect(Date.now() - started).to.be.below(2000);
    } finally {
      await store.close();
    }
  });
});
