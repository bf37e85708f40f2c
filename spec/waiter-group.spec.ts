import { expect } from 'chai';
import { createLogger } from '../lib/log.js';
import { MemoryStore } from '../lib/store/memory-store.js';
import { messageTail } from '../lib/store/store.js';
import { WaiterGroup } from '../lib/waiter-group.js';
import { WaiterRegistry, type Waiter } from '../lib/waiters.js';

/** Sets constructed while `run` runs (the registry's module finds `Set` on the global object). */
function setsMadeBy(run: () => void): number {
  const Original = globalThis.Set;
  let made = 0;
  globalThis.Set = class CountedSet<T> extends Original<T> {
    constructor(values?: Iterable<T> | null) {
      super(values);
      made++;
    }
  } as SetConstructor;
  try {
    run();
  } finally {
    globalThis.Set = Original;
  }
  return made;
}

function waiterOn(stream: string): Waiter {
  return {
    streams: [stream],
    limit: 10,
    position: () => ({ epoch: '', seq: 0 }),
    onRead() {},
    onResync() {},
  };
}

describe('WaiterGroup', () => {
  it('holds one waiter, then a crowd, in the order they came, like a Set', () => {
    const group = new WaiterGroup<string>();
    expect(group.size).to.equal(0);
    expect([...group]).to.deep.equal([]);
    group.add('a');
    group.add('a');
    expect(group.size).to.equal(1);
    expect(group.has('a')).to.equal(true);
    expect([...group]).to.deep.equal(['a']);
    group.add('b');
    group.add('c');
    expect([...group]).to.deep.equal(['a', 'b', 'c']);
    expect(group.delete('b')).to.equal(true);
    expect(group.delete('b')).to.equal(false);
    expect(group.has('b')).to.equal(false);
    expect([...group]).to.deep.equal(['a', 'c']);
    expect(group.size).to.equal(2);
  });

  it('tells whether a lone waiter was there when it is deleted', () => {
    const group = new WaiterGroup<string>();
    expect(group.delete('a')).to.equal(false);
    group.add('a');
    expect(group.delete('b')).to.equal(false);
    expect(group.delete('a')).to.equal(true);
    expect(group.size).to.equal(0);
    expect([...group]).to.deep.equal([]);
  });

  describe('in the registry', () => {
    let store: MemoryStore;
    let registry: WaiterRegistry;
    beforeEach(() => {
      store = new MemoryStore(() => ({ maxLength: 10, ttlSeconds: 60, metaTtlSeconds: 60 }));
      registry = new WaiterRegistry(store, createLogger('silent'));
    });
    afterEach(() => store.close());

    it('parks a waiter alone on its stream with no Set made for it', () => {
      const waiter = waiterOn('alone');
      // The registry's own Set of every waiter already exists; a stream's group must not make one.
      expect(setsMadeBy(() => registry.add(waiter))).to.equal(0);
      expect(registry.size).to.equal(1);
      registry.remove(waiter);
      expect(registry.streamCount).to.equal(0);
    });

    it('makes one when a second waiter joins the stream, and wakes both', async () => {
      const woken: string[] = [];
      const waiter = (name: string): Waiter => ({ ...waiterOn('shared'), onRead: () => void woken.push(name) });
      const first = waiter('first');
      const second = waiter('second');
      registry.add(first);
      expect(setsMadeBy(() => registry.add(second))).to.equal(1);
      await store.append('shared', [{ id: 'm1', sender: 's', tail: messageTail('m1', 1, '1') }]);
      await new Promise((r) => setImmediate(r));
      expect(woken).to.deep.equal(['first', 'second']);
      registry.remove(first);
      registry.remove(second);
      expect(registry.streamCount).to.equal(0);
    });
  });
});
