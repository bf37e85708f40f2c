import { expect } from 'chai';
import fc from 'fast-check';
import { RetainedMessages } from '../../lib/store/retained-messages.js';

/** The backing arrays, to check that dropping stays bounded and releases what it dropped. */
function backing(r: RetainedMessages): { messages: (string | undefined)[]; ids: (string | undefined)[]; head: number } {
  return r as unknown as { messages: (string | undefined)[]; ids: (string | undefined)[]; head: number };
}

describe('RetainedMessages (the memory store log)', function () {
  it('reads and drops exactly as a plain array would, and deletes every dropped id', function () {
    const op = fc.oneof(
      fc.record({ push: fc.integer({ min: 1, max: 5 }) }),
      fc.record({ drop: fc.integer({ min: 0, max: 80 }) }),
      fc.record({ slice: fc.tuple(fc.integer({ min: 0, max: 120 }), fc.integer({ min: 0, max: 120 })) }),
      fc.constant({ clear: true as const }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 400 }), (ops) => {
        const r = new RetainedMessages();
        const model: string[] = [];
        const ids = new Set<string>();
        let next = 0;
        for (const o of ops) {
          if ('push' in o) {
            for (let k = 0; k < o.push; k++, next++) {
              r.push(`m${next}`, `id${next}`);
              model.push(`m${next}`);
              ids.add(`id${next}`);
            }
          } else if ('drop' in o) {
            // A negative count drops nothing (it must not bring dropped slots back).
            if (o.drop === 0) r.dropOldest(-3, ids);
            const dropped = model.splice(0, o.drop);
            r.dropOldest(o.drop, ids);
            for (const m of dropped) expect(ids.has(`id${m.slice(1)}`)).to.equal(false);
          } else if ('slice' in o) {
            const [start, end] = o.slice;
            expect(r.slice(start, end)).to.deep.equal(model.slice(start, end));
          } else {
            r.clear();
            model.length = 0;
          }
          expect(r.length).to.equal(model.length);
          // Ids of retained messages are still known.
          for (const m of model) expect(ids.has(`id${m.slice(1)}`)).to.equal(true);
        }
        expect(r.slice(0, Number.MAX_SAFE_INTEGER)).to.deep.equal(model);
      }),
    );
  });

  it('keeps a full log bounded and lets go of what it dropped', function () {
    const r = new RetainedMessages();
    const ids = new Map<string, number>();
    for (let seq = 1; seq <= 10_000; seq++) {
      r.push(`m${seq}`, `id${seq}`);
      ids.set(`id${seq}`, seq);
      if (r.length > 100) r.dropOldest(r.length - 100, ids);
      const { messages, ids: idSlots, head } = backing(r);
      // At most the retained 100 plus as many dropped slots: compaction comes once they are as many.
      expect(messages.length).to.be.at.most(200);
      for (let i = 0; i < head; i++) {
        expect(messages[i]).to.equal(undefined);
        expect(idSlots[i]).to.equal(undefined);
      }
    }
    expect(r.length).to.equal(100);
    expect(ids.size).to.equal(100);
    expect(r.slice(0, 1)).to.deep.equal(['m9901']);
    expect(r.slice(99, 100)).to.deep.equal(['m10000']);
  });
});
