/**
 * A contract-suite harness for the Redis store, on a single Redis or a cluster: a fresh key
 * prefix per store, and expiry simulated by deleting the keys (what their TTLs would do; a
 * stream's keys share a hash tag, so each DEL touches one slot).
 */
import type { Redis, Cluster } from 'ioredis';
import type { RetentionRule } from '../../lib/config.js';
import { createLogger } from '../../lib/log.js';
import { RedisKeys } from '../../lib/store/redis-keys.js';
import { RedisStore, type RedisStoreOptions } from '../../lib/store/redis-store.js';
import { testConfig } from '../support/gateway.js';
import { uniquePrefix } from '../support/redis.js';
import type { StoreHarness } from './contract.js';

const log = createLogger('silent');

export async function redisHarness(url: string, cluster: boolean, admin: Redis | Cluster, retention: (stream: string) => RetentionRule, more: Partial<RedisStoreOptions> = {}): Promise<StoreHarness> {
  const keyPrefix = uniquePrefix();
  const keys = new RedisKeys(keyPrefix);
  // The tail cache on, as configured by default (off with classic pub/sub on a cluster whatever the config says).
  const store = new RedisStore({ url, keyPrefix, cluster, commandTimeoutMs: 2000, retention, tailCache: testConfig().redis.tailCache, log, ...more });
  await store.connect();
  return {
    store,
    async expireMessages(stream) {
      await admin.del(keys.log(stream), keys.ids(stream));
    },
    async expireAll(stream) {
      await admin.del(keys.log(stream), keys.ids(stream), keys.meta(stream));
    },
    async close() {
      await store.close();
      admin.disconnect();
    },
  };
}
