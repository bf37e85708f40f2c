/**
 * Run as `node --expose-gc promotion-probe.js`: parks polls on many streams, then answers and
 * re-parks them, over and over, the way a long-polling gateway lives (each client polling with its
 * conn id, as the browser client does), and prints as JSON how much the old generation grew
 * meanwhile (bytes) and how many polls were answered. Each parked poll carries a payload (512
 * numbers) on its response, so a poll that is kept past its answer shows. Only scavenges run
 * while it churns: what the old generation gained is what was promoted. A poll that nothing
 * refers to once answered dies young; one that an old object still points at (a replaced hash
 * table of parked polls, say) is promoted (spec/promotion.spec.ts).
 */
import { getHeapSpaceStatistics } from 'node:v8';
import type { Position } from '../../lib/cursor.js';
import { createLogger } from '../../lib/log.js';
import { MemoryStore } from '../../lib/store/memory-store.js';
import { SERVER_SENDER, messageTail } from '../../lib/store/store.js';
import { LongPolls, type PollRequest } from '../../lib/transports/long-poll.js';
import { WaiterRegistry } from '../../lib/waiters.js';
import { PollSessions } from '../../lib/transports/poll-sessions.js';
import { Sessions } from '../../lib/sessions.js';

const STREAMS = 300;
const ANSWERS = 20_000;
const gc = (globalThis as { gc?: (o?: { type: 'minor' | 'major' }) => void }).gc;
if (!gc) throw new Error('run with --expose-gc');

const oldSpaceUsed = () => getHeapSpaceStatistics().find((s) => s.space_name === 'old_space')!.space_used_size;

// One retained message a stream: the log itself does not grow.
const store = new MemoryStore(() => ({ maxLength: 1, ttlSeconds: 3600, metaTtlSeconds: 86_400 }));
const log = createLogger('silent');
const polls = new LongPolls(store, new WaiterRegistry(store, log), log, new PollSessions(new Sessions(), 60_000));

function request(stream: string): PollRequest {
  const head = store.knownHead(stream);
  const response = { writableFinished: false, destroyed: false, on() {}, off() {}, payload: new Array<number>(512).fill(1) };
  // Each stream's client polls with a conn id, as the browser client does: one parked poll per conn.
  return { positions: new Map<string, Position>([[stream, { epoch: head.epoch, seq: head.lastSeq }]]), limit: 10, timeoutMs: 60_000, response, session: { subject: 'probe', conn: stream } };
}

const streams = Array.from({ length: STREAMS }, (_, i) => `probe:${i}`);
for (const s of streams) await store.append(s, [{ id: `${s}:0`, sender: SERVER_SENDER, tail: messageTail(`${s}:0`, 1, '0') }]);
for (const s of streams) polls.poll(request(s));
// The registry, the store and the first polls are old now, as in a gateway that has run a while.
gc();
gc();
const before = oldSpaceUsed();
let answered = 0;
for (let i = 0; i < ANSWERS; i++) {
  const s = streams[i % STREAMS]!;
  await store.append(s, [{ id: `${s}:${i + 1}`, sender: SERVER_SENDER, tail: messageTail(`${s}:${i + 1}`, 1, '1') }]);
  // The wake-up runs in a microtask after the append: let it answer the parked poll.
  await new Promise((resolve) => setImmediate(resolve));
  const parked = polls.poll(request(s));
  if (parked instanceof Promise || !('whenDone' in parked)) throw new Error('the poll did not park at once');
  answered++;
  if (i % 2000 === 1999) gc({ type: "minor" });
}
gc({ type: 'minor' });
gc({ type: 'minor' });
process.stdout.write(JSON.stringify({ oldGrowthBytes: oldSpaceUsed() - before, answered, parked: polls.size }) + '\n');
await polls.shutdown();
await store.close();
