import { expect } from 'chai';
import { gcEvents, scavengeSummary } from '../../../bench/peers/gc-trace.js';

const MB = 1024 * 1024;

/** A `--trace-gc-nvp` line as Node 20 prints it (fields cut down to those read, plus noise). */
function line(atMs: number, kind: 's' | 'mc', f: { pause: number; mutator: number; allocated?: number; survived?: number; promoted?: number }): string {
  return `[8048:0x43939d30]     ${atMs} ms: pause=${f.pause} mutator=${f.mutator} gc=${kind} reduce_memory=0 scavenge.parallel=9.22 `
    + `allocated=${f.allocated ?? 0} promoted=${f.promoted ?? 0} new_space_survived=${f.survived ?? 0} promotion_ratio=0.0% `;
}

describe('bench/peers/gc-trace', function () {
  it('reads the scavenges and mark-compacts of the last span, and skips other lines', function () {
    const log = [
      '{"level":40,"msg":"a log line of the server"}',
      line(1000, 's', { pause: 50, mutator: 900, allocated: 99 * MB, promoted: 99 * MB }), // warm-up: outside the span
      line(5000, 's', { pause: 10, mutator: 100, allocated: 24 * MB, survived: 5 * MB, promoted: 4 * MB }),
      line(5100, 's', { pause: 20, mutator: 100, allocated: 26 * MB, survived: 3 * MB, promoted: 2 * MB }),
      line(5150, 'mc', { pause: 7.5, mutator: 50 }),
      '',
      line(5200, 's', { pause: 30, mutator: 100, allocated: 25 * MB, survived: 4 * MB, promoted: 6 * MB }),
    ].join('\n');
    const events = gcEvents(log);
    expect(events.map((e) => e.kind)).to.deep.equal(['s', 's', 's', 'mc', 's']);
    expect(scavengeSummary(events, 1000)).to.deep.equal({
      scavenges: 3,
      intervalMs: 100,
      allocatedMB: 25,
      survivedMB: 4,
      promotedMB: 4,
      pauseMs: 20,
      markCompacts: 1,
      markCompactPauseMs: 7.5,
      // After the first scavenge of the span: 2 + 6 MB over the 200 ms from it to the last.
      promotedMBPerSec: 40,
    });
  });

  it('gives zeros, not NaN, when the span holds no scavenge', function () {
    const s = scavengeSummary(gcEvents(line(10, 'mc', { pause: 3, mutator: 1 })), 1000);
    expect(s).to.include({ scavenges: 0, intervalMs: 0, promotedMB: 0, promotedMBPerSec: 0, markCompacts: 1 });
  });
});
