import { expect } from 'chai';
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

describe('the memory store keeps each message as one flat string (storedMessage)', function () {
  it('holds well under 350 bytes of heap per retained message of ~170 characters', async function () {
    this.timeout(30_000);
    // In a process of its own, with a GC to call: heap per message is the measure of the flat
    // string (about 245 bytes here); the tree of string pieces it replaced held about 450.
    const store = new URL('../../lib/store/memory-store.js', import.meta.url).href;
    const storeHelpers = new URL('../../lib/store/store.js', import.meta.url).href;
    const script = `
      const { MemoryStore } = await import(${JSON.stringify(store)});
      const { messageTail } = await import(${JSON.stringify(storeHelpers)});
      const store = new MemoryStore(() => ({ maxLength: 1000, ttlSeconds: 3600, metaTtlSeconds: 7200 }));
      const data = JSON.stringify({ text: 'x'.repeat(100) });
      gc();
      const before = process.memoryUsage().heapUsed;
      const n = 20000;
      for (let i = 0; i < n; i++) {
        const id = 'id' + String(i).padStart(19, '0');
        await store.append('room:' + (i % 20), [{ id, sender: '', tail: messageTail(id, 1700000000000 + i, data), idMadeHere: true }]);
      }
      gc();
      console.log(JSON.stringify({ perMessage: (process.memoryUsage().heapUsed - before) / n, read: (await store.read('room:3', 0, 1)).messages[0] }));
      await store.close();
    `;
    const { execFileSync } = await import('node:child_process');
    const out = JSON.parse(execFileSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script]).toString()) as { perMessage: number; read: string };
    expect(JSON.parse(out.read)).to.deep.equal({ stream: 'room:3', seq: 1, id: 'id0000000000000000003', ts: 1700000000003, data: { text: 'x'.repeat(100) } });
    expect(out.perMessage).to.be.below(350);
  });
});
