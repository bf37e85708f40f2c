/**
 * The append script as a Redis 7 function (lib/store/lua-script.ts): INFO server is asked once per
 * Redis process instead of once per append, a restarted process is still noticed, and EVAL takes
 * over wherever the function is not there.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import type { Redis } from 'ioredis';
import { createLogger } from '../../lib/log.js';
import { RedisStore } from '../../lib/store/redis-store.js';
import { messageTail } from '../../lib/store/store.js';
import { redisClient, startRedisServer, type RedisServer } from '../support/redis.js';

const RULE = { maxLength: 100, ttlSeconds: 600, metaTtlSeconds: 6000 };

/** Calls of each command the server ran since its stats were reset (scripts' calls included). */
async function commandCalls(admin: Redis): Promise<Record<string, number>> {
  const calls: Record<string, number> = {};
  for (const m of (await admin.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls[m[1]!] = Number(m[2]);
  return calls;
}

describe('the append as a Redis function', function () {
  this.timeout(30_000);
  let dir: string;
  let redis: RedisServer;
  let admin: Redis;
  let store: RedisStore;
  let n = 0;

  const append = async (stream: string) => {
    const id = `m${++n}`;
    const [result] = await store.append(stream, [{ id, sender: 'test', tail: messageTail(id, 1, '"x"') }]);
    return result!;
  };
  const epochOf = async (stream: string) => (await store.read(stream, 0, 0)).epoch;

  beforeEach(async function () {
    dir = mkdtempSync(join(tmpdir(), 'pollgate-function-'));
    redis = await startRedisServer({ dir });
    admin = redisClient(redis.url);
    store = new RedisStore({ url: redis.url, keyPrefix: 'fn:', cluster: false, commandTimeoutMs: 2000, retention: () => RULE, log: createLogger('silent') });
    await store.connect();
  });

  afterEach(async function () {
    await store?.close();
    admin?.disconnect();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('asks INFO once per Redis process, not once per append', async function () {
    await append('a:1');
    await admin.config('RESETSTAT');
    for (let i = 0; i < 20; i++) await append(`a:${i % 3}`);
    const calls = await commandCalls(admin);
    expect(calls.fcall).to.equal(20);
    expect(calls.evalsha ?? 0).to.equal(0);
    expect(calls.info ?? 0).to.be.at.most(1);
  });

  it('appends through EVAL while the function is missing, and loads it for the next append', async function () {
    const first = await append('b:1');
    await admin.call('FUNCTION', 'FLUSH');
    await admin.config('RESETSTAT');
    const second = await append('b:1');
    expect(second.seq).to.equal(first.seq + 1);
    expect((await commandCalls(admin))['function|load']).to.equal(1);
    await admin.config('RESETSTAT');
    await append('b:1');
    expect(await commandCalls(admin)).to.include({ fcall: 1 });
  });

  it('appends through EVAL for a user that may EVAL but not FCALL', async function () {
    await admin.call('ACL', 'SETUSER', 'nofcall', 'on', 'nopass', '~*', '&*', '+@all', '-fcall');
    const limited = new RedisStore({ url: `redis://nofcall@127.0.0.1:${redis.port}`, keyPrefix: 'fn:', cluster: false, commandTimeoutMs: 2000, retention: () => RULE, log: createLogger('silent') });
    try {
      await limited.connect();
      for (const id of ['e1', 'e2', 'e3']) await limited.append('e:1', [{ id, sender: 'test', tail: messageTail(id, 1, '1') }]);
      expect((await limited.read('e:1', 0, 10)).lastSeq).to.equal(3);
    } finally {
      await limited.close();
    }
  });

  it('starts a new epoch after a restart that kept the data and the function, and keeps it after a reload of the function', async function () {
    await append('c:1');
    const before = await epochOf('c:1');
    // A reload of the library in the same process: the same run_id, so the same epoch.
    await admin.call('FUNCTION', 'FLUSH');
    await append('c:1');
    await append('c:1');
    expect(await epochOf('c:1')).to.equal(before);
    await admin.save();
    admin.disconnect();
    const port = redis.port;
    await redis.stop();
    redis = await startRedisServer({ port, dir });
    admin = redisClient(redis.url);
    expect(await admin.call('FUNCTION', 'LIST')).to.have.length(1);
    await admin.config('RESETSTAT');
    for (;;) {
      try {
        await append('c:1');
        break;
      } catch {
        // Until the store has reconnected.
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    expect(await commandCalls(admin)).to.include({ fcall: 1 });
    expect(await epochOf('c:1')).not.to.equal(before);
  });
});
