/**
 * A poll's answer is rendered once for the answers in a row that carry the same batch (the polls
 * of a broadcast share one: SharedAnswer), and again for any other batch.
 */
import { expect } from 'chai';
import type { Position } from '../../lib/cursor.js';
import type { Batch } from '../../lib/delivery.js';
import { answerRenderer } from '../../lib/routes/poll.js';

function batch(seq: number): Batch {
  const positions = new Map<string, Position>([['s', { epoch: 'AAAAAAAB', seq }]]);
  return { deliveries: [{ stream: 's', messages: [`{"seq":${seq}}`], position: positions.get('s')! }], positions, count: 1 };
}

describe('poll answers: rendering', function () {
  it('signs and renders a batch once for the answers in a row that carry it', function () {
    let encoded = 0;
    const render = answerRenderer({ encode: () => `c${++encoded}` });
    const shared = batch(1);
    const bodies = Array.from({ length: 5 }, () => render(shared));
    expect(encoded).to.equal(1);
    expect(new Set(bodies)).to.deep.equal(new Set(['{"messages":[{"seq":1}],"cursor":"c1"}']));
    // Another batch (even an equal one) is rendered on its own.
    expect(render(batch(1))).to.equal('{"messages":[{"seq":1}],"cursor":"c2"}');
    expect(render(batch(2))).to.equal('{"messages":[{"seq":2}],"cursor":"c3"}');
    expect(encoded).to.equal(3);
  });
});
