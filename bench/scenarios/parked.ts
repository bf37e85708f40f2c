/**
 * Parked memory: N clients each park a poll on its own stream; RSS per parked poll over the
 * idle baseline, then RSS once they left by closing their connections (round 1) and once a
 * second round timed out (round 2): memory must not keep growing after they are gone.
 */
import { readdirSync } from 'node:fs';
import { poll, pool, round, sharedAbort } from '../client.js';
import { sleep } from '../gateway.js';
import { parkInChunks, type ScenarioContext } from './context.js';

export interface ParkedResult {
  clients: number;
  baselineRssMB: number;
  kbPerParked: number;
  kbHeapPerParked: number;
  /** V8 heap committed per parked poll (heapTotal): above kbHeapPerParked is free space inside the heap. */
  kbHeapTotalPerParked: number;
  rssAfterTimeoutMB: number;
  kbPerParkedRound2: number;
  rssAfterLeaveMB: number;
  /** Heap in use and the gateway's open descriptors once everything left: growth here is a leak, RSS alone may be allocator slack. */
  heapAfterLeaveMB: number;
  heapAfterTimeoutMB: number;
  fdsBase: number;
  fdsAfterLeave: number;
  fdsAfterTimeout: number;
  parkSeconds: number;
}

const MB = 1024 * 1024;

export async function parkedMemory(ctx: ScenarioContext, clients: number): Promise<ParkedResult> {
  const name = `parked-${clients}`;
  const base = await ctx.gw.stats(false, true);
  const fdsBase = openFds(ctx.gw.pid);

  // Round 1: park, measure, then leave by closing every connection.
  const r1 = await park(ctx, clients, `${ctx.tag}:p1:${clients}:`, 55);
  r1.abort.abort();
  await Promise.allSettled(r1.polls);
  await r1.close();
  await ctx.gw.waitFor('abandoned polls to leave', (s) => s.parkedPolls === 0);
  await sleep(500);
  const afterLeave = await ctx.gw.stats(false, true);
  const fdsAfterLeave = openFds(ctx.gw.pid);

  // Round 2: park again with a hold just long enough to park them all, then let them time out.
  const hold = Math.ceil(r1.seconds * 2 + 3);
  const r2 = await park(ctx, clients, `${ctx.tag}:p2:${clients}:`, hold);
  const answers = await Promise.allSettled(r2.polls);
  for (const a of answers) {
    if (a.status === 'rejected') ctx.violations.add(name, `poll failed: ${String(a.reason)}`);
    else if (a.value.messages.length !== 0) ctx.violations.add(name, 'a timed-out poll carried messages');
  }
  await r2.close();
  await ctx.gw.waitFor('timed-out polls to leave', (s) => s.parkedPolls === 0);
  await sleep(500);
  const afterTimeout = await ctx.gw.stats(false, true);
  const fdsAfterTimeout = openFds(ctx.gw.pid);

  return {
    clients,
    baselineRssMB: round(base.memory.rss / MB),
    kbPerParked: round((r1.parked.memory.rss - base.memory.rss) / 1024 / clients, 2),
    kbHeapPerParked: round((r1.parked.memory.heapUsed - base.memory.heapUsed) / 1024 / clients, 2),
    kbHeapTotalPerParked: round((r1.parked.memory.heapTotal - base.memory.heapTotal) / 1024 / clients, 2),
    rssAfterLeaveMB: round(afterLeave.memory.rss / MB),
    kbPerParkedRound2: round((r2.parked.memory.rss - afterLeave.memory.rss) / 1024 / clients, 2),
    rssAfterTimeoutMB: round(afterTimeout.memory.rss / MB),
    heapAfterLeaveMB: round(afterLeave.memory.heapUsed / MB),
    heapAfterTimeoutMB: round(afterTimeout.memory.heapUsed / MB),
    fdsBase, fdsAfterLeave, fdsAfterTimeout,
    parkSeconds: round(r1.seconds, 2),
  };
}

export function openFds(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return -1;
  }
}

async function park(ctx: ScenarioContext, clients: number, prefix: string, holdS: number) {
  const p = pool(ctx.gw.url, clients);
  const abort = sharedAbort();
  const started = performance.now();
  const polls = await parkInChunks(ctx, clients, (i) =>
    poll(p, ctx.token, { streams: `${prefix}${i}`, since: 'earliest', timeoutS: holdS, signal: abort.signal }),
  );
  const seconds = (performance.now() - started) / 1000;
  await sleep(300);
  return { polls, parked: await ctx.gw.stats(false, true), seconds, abort, close: () => p.destroy() };
}
