/** Root hooks: one Redis for the whole run, stopped at the end. */
import { sharedRedis, stopSharedRedis } from './redis.js';

export const mochaHooks = {
  async beforeAll(this: Mocha.Context) {
    this.timeout(20_000);
    await sharedRedis();
  },
  async afterAll() {
    await stopSharedRedis();
  },
};
