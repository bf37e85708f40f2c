import { expect } from 'chai';
import { loadGeneratorBound } from '../../../bench/peers/report.js';
import type { BroadcastResult } from '../../../bench/peers/scenarios.js';

function broadcast(p100Ms: number, loadGeneratorCpuMs: number): { deliveryRuns: []; publishRuns: []; broadcast: BroadcastResult } {
  return { deliveryRuns: [], publishRuns: [], broadcast: { clients: 5000, p50Ms: p100Ms / 2, p99Ms: p100Ms, p100Ms, loopDelayP99Ms: 20, loopDelayMaxMs: 30, serverCpuMs: 400, loadGeneratorCpuMs } };
}

describe('bench/peers/report', function () {
  describe('loadGeneratorBound', function () {
    it('names each broadcast whose load generator was busy for most of its t100', function () {
      const notes = loadGeneratorBound({ socketio: broadcast(1258, 1253), faye: broadcast(1787, 900), 'pollgate-memory': broadcast(1433, 1453) });
      expect(notes).to.have.length(2);
      expect(notes[0]).to.match(/^pollgate memory broadcast: the load generator was busy for 101% of t100/);
      expect(notes[1]).to.match(/^Socket\.IO polling broadcast: .* 100% of t100/);
    });

    it('says nothing of a server-bound broadcast or a missing one', function () {
      expect(loadGeneratorBound({ faye: broadcast(1787, 900), socketio: { deliveryRuns: [], publishRuns: [] } })).to.deep.equal([]);
    });
  });
});
