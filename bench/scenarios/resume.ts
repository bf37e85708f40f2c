/**
 * Resume after disconnect: clients read a first batch, park, drop their connections, miss
 * messages while away, then come back with their last cursor (small limit, so catching up takes
 * several polls). Each must get exactly the messages it missed, in order, with no gap or reset.
 */
import { poll, pool, send, type Message, sharedAbort } from '../client.js';
import type { ScenarioContext } from './context.js';

export interface ResumeResult {
  clients: number;
  missedPerClient: number;
  resumedExactly: number;
}

const FIRST = 5;
const MISSED = 7;

export async function resume(ctx: ScenarioContext, clients: number): Promise<ResumeResult> {
  const name = 'resume';
  const streams = Array.from({ length: clients }, (_, i) => `${ctx.tag}:r:${i}`);
  const pub = pool(ctx.gw.url, 32);
  const sendAll = async (from: number, count: number) => {
    for (let n = from; n < from + count; n++) await Promise.all(streams.map((s) => send(pub, s, { n, t: 0 })));
  };

  await sendAll(1, FIRST);
  const p1 = pool(ctx.gw.url, clients);
  const cursors = await Promise.all(
    streams.map(async (s) => {
      const a = await poll(p1, ctx.token, { streams: s, since: 'earliest', timeoutS: 0 });
      expectRun(ctx, name, s, a.messages, 1, FIRST);
      return a.cursor;
    }),
  );
  // Park with those cursors, then vanish mid-poll.
  const abort = sharedAbort();
  const parked = streams.map((s, i) => poll(p1, ctx.token, { streams: s, cursor: cursors[i], timeoutS: 55, signal: abort.signal }));
  for (const x of parked) x.catch(() => undefined);
  await ctx.gw.waitFor(`${clients} resume pollers parked`, (st) => st.parkedPolls >= clients);
  abort.abort();
  await Promise.allSettled(parked);
  await p1.destroy();
  await ctx.gw.waitFor('abandoned resume polls to leave', (st) => st.parkedPolls === 0);

  await sendAll(FIRST + 1, MISSED);
  const p2 = pool(ctx.gw.url, clients);
  let exact = 0;
  await Promise.all(
    streams.map(async (s, i) => {
      const got: Message[] = [];
      let cursor = cursors[i];
      for (let k = 0; k < 10; k++) {
        const a = await poll(p2, ctx.token, { streams: s, cursor, timeoutS: 0, limit: 3 });
        if (a.gaps || a.resets) ctx.violations.add(name, `${s}: unexpected gap or reset`);
        cursor = a.cursor;
        if (a.messages.length === 0) break;
        got.push(...a.messages);
      }
      if (expectRun(ctx, name, s, got, FIRST + 1, MISSED)) exact++;
    }),
  );
  await Promise.all([p2.destroy(), pub.destroy()]);
  return { clients, missedPerClient: MISSED, resumedExactly: exact };
}

/** True when `got` is exactly seqs (and bodies) from..from+count-1 in order; logs a violation otherwise. */
function expectRun(ctx: ScenarioContext, name: string, stream: string, got: Message[], from: number, count: number): boolean {
  const seqs = got.map((m) => m.seq);
  const ok = got.length === count && got.every((m, k) => m.seq === from + k && m.data.n === from + k);
  if (!ok) ctx.violations.add(name, `${stream}: expected seqs ${from}..${from + count - 1}, got ${JSON.stringify(seqs)}`);
  return ok;
}
