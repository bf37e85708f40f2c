import { expect } from 'chai';
import { Heartbeat, type HeartbeatMember } from '../../lib/transports/heartbeat.js';

describe('Heartbeat', () => {
  function member(hb: Heartbeat, answers: boolean): HeartbeatMember & { pings: number; died: Promise<number> } {
    let die!: (t: number) => void;
    const m = {
      pings: 0,
      died: new Promise<number>((r) => (die = r)),
      ping() {
        m.pings++;
        if (answers) queueMicrotask(() => hb.alive(m));
      },
      dead() {
        hb.delete(m);
        die(Date.now());
      },
    };
    return m;
  }

  for (const [interval, timeout] of [[40, 20], [40, 40]] as const) {
    it(`declares a silent member dead after maxMissed rounds and keeps answering ones (interval ${interval}, timeout ${timeout})`, async () => {
      const hb = new Heartbeat({ intervalMs: interval, timeoutMs: timeout, maxMissed: 3 });
      const ok = member(hb, true);
      const mute = member(hb, false);
      const t0 = Date.now();
      hb.add(ok);
      hb.add(mute);
      expect(hb.timers).to.equal(1);
      const diedAt = await mute.died;
      expect(diedAt - t0).to.be.within(3 * interval + timeout - 20, 5 * interval + timeout + 500);
      expect(mute.pings).to.equal(3);
      expect(ok.pings).to.be.at.least(3);
      expect(hb.size).to.equal(1);
      hb.delete(ok);
      expect(hb.timers).to.equal(0);
    });
  }
});
