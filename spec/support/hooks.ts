/** Root hooks: one Redis for the whole run (and a Redis Cluster if a test asked for one), stopped at the end. */
import { stopSharedRedisCluster } from './redis-cluster.js';
import { sharedRedis, stopSharedRedis } from './redis.js';

export const mochaHooks = {
  async beforeAll(this: Mocha.Context) {
    this.timeout(20_000);
    await sharedRedis();
  },
  async afterAll() {
    await Promise.all([stopSharedRedis(), stopSharedRedisCluster()]);
  },
};
