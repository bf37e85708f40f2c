/**
 * WaiterRegistry over a scripted store: which wake-ups are answered from the messages they carry
 * and which need a store read. A wrong answer here would be a stale or incomplete delivery.
 */
import { expect } from 'chai';
import type { Position } from '../lib/cursor.js';
import { resolve } from '../lib/delivery.js';
import { createLogger } from '../lib/log.js';
import type { AppendResult, Store, StoreListener, StreamRead, WakeHint } from '../lib/store/store.js';
import { FANOUT_SLICE, WaiterRegistry, type Waiter } from '../lib/waiters.js';

const m = (seq: number) => `{"stream":"s","seq":${seq},"id":"m${seq}","ts":1,"data":${seq}}`;

/** The stream's log: epoch E, seqs first..last retained; reads can be held open. */
class ScriptedStore implements Store {
  readonly kind = 'memory' as const;
  reads: { after: number; limit: number }[] = [];
  epoch = 'EEEEEEEE';
  first = 1;
  last = 0;
  hold?: Promise<void>;
  listener?: StoreListener;
  async append(): Promise<AppendResult[]> {
    throw new Error('not used');
  }
  async read(stream: string, after: number, limit: number): Promise<StreamRead> {
    this.reads.push({ after, limit });
    const snapshot = { epoch: this.epoch, first: this.first, last: this.last };
    await this.hold;
    const from = Math.max(after, snapshot.first - 1);
    const messages: string[] = [];
    for (let s = from + 1; s <= snapshot.last && messages.length < limit; s++) messages.push(m(s));
    return { stream, epoch: snapshot.epoch, lastSeq: snapshot.last, firstSeq: snapshot.first, after: from, messages };
  }
  async subscribe(): Promise<void> {}
  async unsubscribe(): Promise<void> {}
  setListener(l: StoreListener): void {
    this.listener = l;
  }
  async ping(): Promise<void> {}
  async close(): Promise<void> {}
}

/** A waiter that records what it would deliver (via the shared resolve()) and moves its position. */
class RecordingWaiter implements Waiter {
  readonly streams = ['s'];
  readonly limit = 100;
  delivered: { seqs?: number[]; gap?: boolean; reset?: boolean; reread?: number }[] = [];
  constructor(public pos: Position) {}
  position(): Position {
    return this.pos;
  }
  onRead(read: StreamRead): void {
    const r = resolve(this.pos, read, this.limit);
    if ('reread' in r) {
      // A transport reads again from there (deliverStream); recording it is enough here.
      this.delivered.push({ reread: r.reread });
      return;
    }
    if (r.messages.length || r.gap || r.reset) {
      this.delivered.push({ seqs: r.messages.map((x) => JSON.parse(x).seq), ...(r.gap ? { gap: true } : {}), ...(r.reset ? { reset: true } : {}) });
    }
    this.pos = r.position;
  }
  onResync(): void {}
}

const settle = () => new Promise((r) => setImmediate(r));

describe('WaiterRegistry', () => {
  let store: ScriptedStore;
  let registry: WaiterRegistry;
  const wake = (hint: WakeHint) => store.listener!.wake('s', hint);

  beforeEach(() => {
    store = new ScriptedStore();
    registry = new WaiterRegistry(store, createLogger('silent'));
  });

  describe('wake() with the appended messages', () => {
    it('answers a waiter at the seq before them without a store read', async () => {
      const w = new RecordingWaiter({ epoch: store.epoch, seq: 4 });
      await registry.add(w);
      store.last = 6;
      wake({ epoch: store.epoch, lastSeq: 6, messages: [m(5), m(6)] });
      await settle();
      expect(w.delivered).to.deep.equal([{ seqs: [5, 6] }]);
      expect(store.reads).to.have.length(0);
    });

    it('answers a waiter inside the range with only what it has not seen', async () => {
      const w = new RecordingWaiter({ epoch: store.epoch, seq: 5 });
      await registry.add(w);
      store.last = 6;
      wake({ epoch: store.epoch, lastSeq: 6, messages: [m(5), m(6)] });
      await settle();
      expect(w.delivered).to.deep.equal([{ seqs: [6] }]);
      expect(store.reads).to.have.length(0);
    });

    it('reads the store for a waiter behind the range, and only for it', async () => {
      const exact = new RecordingWaiter({ epoch: store.epoch, seq: 4 });
      const behind = new RecordingWaiter({ epoch: store.epoch, seq: 2 });
      await registry.add(exact);
      await registry.add(behind);
      store.last = 6;
      wake({ epoch: store.epoch, lastSeq: 6, messages: [m(5), m(6)] });
      await settle();
      expect(exact.delivered).to.deep.equal([{ seqs: [5, 6] }]);
      expect(behind.delivered).to.deep.equal([{ seqs: [3, 4, 5, 6] }]);
      expect(store.reads).to.deep.equal([{ after: 2, limit: 100 }]);
    });

    it('reports a gap from the log, never from the hint, for a waiter behind the retained log', async () => {
      const behind = new RecordingWaiter({ epoch: store.epoch, seq: 1 });
      await registry.add(behind);
      store.first = 5;
      store.last = 6;
      wake({ epoch: store.epoch, lastSeq: 6, messages: [m(5), m(6)] });
      await settle();
      expect(behind.delivered).to.deep.equal([{ seqs: [5, 6], gap: true }]);
      expect(store.reads).to.have.length(1);
    });

    it('reads the store for a waiter of another epoch (a reset), not the hint', async () => {
      const old = new RecordingWaiter({ epoch: 'OLDOLDOL', seq: 4 });
      await registry.add(old);
      store.last = 6;
      wake({ epoch: store.epoch, lastSeq: 6, messages: [m(5), m(6)] });
      await settle();
      // The registry's read (after the lowest position) cannot cover a reset: the waiter must re-read from the start.
      expect(old.delivered).to.deep.equal([{ reread: 0 }]);
      expect(store.reads).to.have.length(1);
    });

    it('ignores a wake-up the waiter is already past', async () => {
      const w = new RecordingWaiter({ epoch: store.epoch, seq: 6 });
      await registry.add(w);
      store.last = 6;
      wake({ epoch: store.epoch, lastSeq: 6, messages: [m(6)] });
      await settle();
      expect(w.delivered).to.deep.equal([]);
      expect(store.reads).to.have.length(0);
    });

    it('does not use the hint while a read is in flight, and reads again after it lands', async () => {
      const w = new RecordingWaiter({ epoch: store.epoch, seq: 4 });
      await registry.add(w);
      let release!: () => void;
      store.hold = new Promise((r) => (release = r));
      store.last = 5;
      wake({ epoch: store.epoch, lastSeq: 5 });
      await settle();
      expect(store.reads).to.have.length(1);
      // Seq 6 lands while the read of the older head is still open: no shortcut past it.
      store.last = 6;
      wake({ epoch: store.epoch, lastSeq: 6, messages: [m(6)] });
      expect(w.delivered).to.deep.equal([]);
      store.hold = undefined;
      release();
      await settle();
      await settle();
      expect(w.delivered).to.deep.equal([{ seqs: [5] }, { seqs: [6] }]);
      expect(store.reads).to.have.length(2);
    });
  });

  describe('fan-out to more waiters than one slice', () => {
    const many = FANOUT_SLICE * 2 + 10;
    const settleAll = async () => {
      for (let i = 0; i < 20; i++) await settle();
    };
    /** `count` registered waiters at seq 4. */
    const parked = async (count: number) => {
      const ws = Array.from({ length: count }, () => new RecordingWaiter({ epoch: store.epoch, seq: 4 }));
      for (const w of ws) await registry.add(w);
      return ws;
    };
    /** Runs `then` right after `w` is handed its read (so inside the slice that answers it). */
    const afterRead = (w: RecordingWaiter, then: () => void) => {
      const onRead = w.onRead.bind(w);
      w.onRead = (read) => {
        onRead(read);
        then();
      };
    };

    it('answers every waiter from one read, letting the event loop turn between slices', async () => {
      const ws = await parked(many);
      let answeredWhenLoopTurned = -1;
      afterRead(ws[0]!, () => setImmediate(() => (answeredWhenLoopTurned = ws.filter((w) => w.delivered.length > 0).length)));
      store.last = 5;
      wake({ epoch: store.epoch, lastSeq: 5 });
      await settleAll();
      expect(ws.every((w) => JSON.stringify(w.delivered) === '[{"seqs":[5]}]')).to.equal(true);
      expect(store.reads).to.have.length(1);
      expect(answeredWhenLoopTurned).to.be.within(1, many - 1);
    });

    it('makes slices smaller when answers are slow, so one turn of the loop stays short', async () => {
      const ws = await parked(FANOUT_SLICE + 64);
      // 1 ms per answer: the first slice takes about FANOUT_SLICE ms, far over the budget.
      for (const w of ws) {
        afterRead(w, () => {
          const until = performance.now() + 1;
          while (performance.now() < until);
        });
      }
      const answeredPerTurn: number[] = [];
      let before = 0;
      const count = () => ws.filter((w) => w.delivered.length > 0).length;
      store.last = 5;
      wake({ epoch: store.epoch, lastSeq: 5 });
      while (count() < ws.length) {
        await settle();
        const now = count();
        if (now > before) answeredPerTurn.push(now - before);
        before = now;
      }
      expect(answeredPerTurn[0]).to.equal(FANOUT_SLICE);
      expect(answeredPerTurn.length).to.be.greaterThan(2);
      for (const n of answeredPerTurn.slice(1)) expect(n).to.be.at.most(32);
    });

    it('skips a waiter that left between slices', async () => {
      const ws = await parked(many);
      const last = ws[many - 1]!;
      afterRead(ws[0]!, () => registry.remove(last));
      store.last = 5;
      wake({ epoch: store.epoch, lastSeq: 5 });
      await settleAll();
      expect(last.delivered).to.deep.equal([]);
      expect(ws[many - 2]!.delivered).to.deep.equal([{ seqs: [5] }]);
    });

    it('does not hand an older snapshot to a waiter that moved on while it waited for its slice', async () => {
      const ws = await parked(many);
      const moved = ws[many - 1]!;
      // Its transport catches up on its own before the last slice is handed out.
      afterRead(ws[0]!, () => setImmediate(() => (moved.pos = { epoch: store.epoch, seq: 9 })));
      store.last = 5;
      wake({ epoch: store.epoch, lastSeq: 5 });
      await settleAll();
      expect(moved.delivered).to.deep.equal([]);
      expect(ws[1]!.delivered).to.deep.equal([{ seqs: [5] }]);
    });

    it('leaves a broadcast larger than a slice to the one read, not the hint', async () => {
      const ws = await parked(FANOUT_SLICE + 1);
      store.last = 5;
      wake({ epoch: store.epoch, lastSeq: 5, messages: [m(5)] });
      await settleAll();
      expect(ws.every((w) => JSON.stringify(w.delivered) === '[{"seqs":[5]}]')).to.equal(true);
      expect(store.reads).to.have.length(1);
    });
  });

  describe('wake() without messages', () => {
    it('answers every waiter of the stream from one read', async () => {
      const ws = [3, 4, 4].map((seq) => new RecordingWaiter({ epoch: store.epoch, seq }));
      for (const w of ws) await registry.add(w);
      store.last = 6;
      wake({ epoch: store.epoch, lastSeq: 6 });
      await settle();
      expect(ws.map((w) => w.delivered)).to.deep.equal([[{ seqs: [4, 5, 6] }], [{ seqs: [5, 6] }], [{ seqs: [5, 6] }]]);
      expect(store.reads).to.deep.equal([{ after: 3, limit: 100 }]);
    });
  });

  describe('add()', () => {
    it('returns nothing when wake-ups already flow, and a promise while the store subscribes', async () => {
      expect(registry.add(new RecordingWaiter({ epoch: store.epoch, seq: 0 }))).to.be.a('promise');
      await settle();
      // The subscription of the first waiter has been confirmed: the next one needs no wait.
      expect(registry.add(new RecordingWaiter({ epoch: store.epoch, seq: 0 }))).to.equal(undefined);
      expect(registry.size).to.equal(2);
    });

    it('turns a subscribe that throws at once into a rejection, and forgets the stream', async () => {
      store.subscribe = () => {
        throw new Error('subscriber is gone');
      };
      const w = new RecordingWaiter({ epoch: store.epoch, seq: 0 });
      const added = registry.add(w);
      expect(added).to.be.a('promise');
      await added!.then(
        () => expect.fail('add() resolved'),
        (err: Error) => expect(err.message).to.equal('subscriber is gone'),
      );
      expect(registry.streamCount).to.equal(0);
      registry.remove(w);
      expect(registry.size).to.equal(0);
    });

    it('keeps each waiter once, oldest first, and a waiter in one registry at a time', async () => {
      const [a, b, c] = [1, 2, 3].map(() => new RecordingWaiter({ epoch: store.epoch, seq: 0 }));
      for (const w of [a!, b!, c!, a!]) registry.add(w);
      await settle();
      const seen: Waiter[] = [];
      registry.forEach((w) => seen.push(w));
      expect(seen).to.deep.equal([a, b, c]);
      expect(registry.size).to.equal(3);
      // Another registry may neither take it nor unlink it from this one's list.
      const other = new WaiterRegistry(new ScriptedStore(), createLogger('silent'));
      expect(() => other.add(b!)).to.throw(/another registry/);
      other.remove(b!);
      registry.remove(b!);
      registry.remove(b!);
      seen.length = 0;
      registry.forEach((w) => seen.push(w));
      expect(seen).to.deep.equal([a, c]);
      expect([registry.size, other.size]).to.deep.equal([2, 0]);
    });
  });
});
