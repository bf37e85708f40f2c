import { MemoryStore } from '../../lib/store/memory-store.js';
import { storeContract } from './contract.js';

storeContract('memory', async (retention) => {
  let now = Date.now();
  const store = new MemoryStore(retention, () => now);
  const ttl = (stream: string) => retention(stream);
  return {
    store,
    // Advance the store's clock past the TTLs instead of waiting for them.
    async expireMessages(stream) {
      now += ttl(stream).ttlSeconds * 1000 + 1;
    },
    async expireAll(stream) {
      now += ttl(stream).metaTtlSeconds * 1000 + 1;
    },
    close: () => store.close(),
  };
});
