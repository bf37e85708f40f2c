/**
 * The peer comparison (issue 19, item 1): pollgate on both stores beside Socket.IO polling,
 * Socket.IO + redis-adapter and Faye, each its own process on core 0, driven by the same load
 * generator on core 1. Memory and broadcast (after one broadcast not measured) on a fresh
 * process per target, one target at a time; then every target running at once (the idle ones
 * cost nothing) and the CPU figures measured in rounds that alternate the targets (the order
 * rotates each round), the median of the rounds kept.
 */
import type { RedisServer } from '../../spec/support/redis.js';
import type { Violations } from '../client.js';
import { broadcast, delivery, parked, publishOnly, type BroadcastResult, type DeliveryResult, type ParkedPeerResult, type PublishResult } from './scenarios.js';
import { loadGeneratorBound, peerRatios } from './report.js';
import type { PeerContext } from './subscribers.js';
import { startTarget, TARGET_NAMES, type PeerTarget, type TargetName } from './targets.js';

export interface PeerSizes {
  /** Subscribers (one stream each) in the delivery runs. */
  clients: number;
  /** Streams the publish-only runs publish over. */
  streams: number;
  broadcast: number;
  parked: number;
  rounds: number;
  /** Measured window of each delivery and publish run (s), after a warm-up (longer in round 1). */
  seconds: number;
}

export const PEER_SIZES: Record<'full' | 'quick', PeerSizes> = {
  full: { clients: 1000, streams: 1000, broadcast: 5000, parked: 10_000, rounds: 3, seconds: 2 },
  quick: { clients: 200, streams: 1000, broadcast: 1000, parked: 2000, rounds: 1, seconds: 1 },
};

export interface TargetFigures {
  delivery?: DeliveryResult;
  deliveryRuns: DeliveryResult[];
  publish?: PublishResult;
  publishRuns: PublishResult[];
  broadcast?: BroadcastResult;
  parked?: ParkedPeerResult;
}

export interface PeersReport {
  sizes: PeerSizes;
  seconds: number;
  targets: Record<TargetName, TargetFigures>;
  /** pollgate ÷ best peer per figure (bench/peers/report.ts): memory store, Redis store. */
  ratios?: Record<string, { memory?: number; redis?: number }>;
  notes: string[];
}

export interface PeerRunOptions {
  quick: boolean;
  redis: RedisServer;
  violations: Violations;
  token: string;
  logDir: string;
  /** Most subscribers the descriptor limit allows on each side. */
  maxClients: number;
}

function median<T>(items: T[], key: (t: T) => number): T | undefined {
  return [...items].sort((a, b) => key(a) - key(b))[Math.floor(items.length / 2)];
}

export async function runPeers(o: PeerRunOptions): Promise<PeersReport> {
  const started = Date.now();
  const log = (s: string) => process.stderr.write(`[peers] ${s} (at ${Math.round(process.uptime())} s)\n`);
  const base = PEER_SIZES[o.quick ? 'quick' : 'full'];
  const sizes = { ...base, broadcast: Math.min(base.broadcast, o.maxClients), parked: Math.min(base.parked, o.maxClients) };
  const notes = sizes.parked < base.parked ? [`parked scaled down to ${sizes.parked} (descriptor limit)`] : [];
  const targets = Object.fromEntries(TARGET_NAMES.map((n) => [n, { deliveryRuns: [], publishRuns: [] }])) as unknown as Record<TargetName, TargetFigures>;
  const ctxOf = (target: PeerTarget): PeerContext => ({ target, violations: o.violations, tag: `${target.name.replace(/[^a-z]/g, '')}${Date.now().toString(36)}` });
  // A scenario that throws is a violation (the run fails) and a missing figure, not the end of the comparison.
  const attempt = async <T>(what: string, fn: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await fn();
    } catch (err) {
      o.violations.add(`peers ${what}`, (err as Error).message);
      return undefined;
    }
  };

  for (const name of TARGET_NAMES) {
    log(`${name}: ${sizes.parked} parked, broadcast to ${sizes.broadcast}`);
    await attempt(`${name} start`, async () => {
      const target = await startTarget(name, o);
      try {
        targets[name].parked = await attempt(`${name} parked`, () => parked(ctxOf(target), sizes.parked));
        // A broadcast of the same size first, not measured, on its own stream: a server's first
        // broadcast to 5,000 polls is not its steady state. pollgate memory's first read 974 ms to
        // t100 and 605 ms of server CPU, the next two 739 / 764 and 443 / 393 (three in a row on
        // one process); a broadcast to a fifth as many before it did not make up the difference.
        // The load generator, one process for every target, is warmed alike.
        await attempt(`${name} broadcast warm-up`, () => broadcast({ ...ctxOf(target), tag: `${ctxOf(target).tag}w` }, sizes.broadcast));
        targets[name].broadcast = await attempt(`${name} broadcast`, () => broadcast(ctxOf(target), sizes.broadcast));
      } finally {
        await target.gw.stop();
      }
    });
  }

  const running: PeerTarget[] = [];
  try {
    for (const name of TARGET_NAMES) {
      const t = await attempt(`${name} start`, () => startTarget(name, o));
      if (t) running.push(t);
    }
    for (let r = 0; r < sizes.rounds; r++) {
      // Round 1 warms up longer: with 1 s, pollgate's first round read ~2x its later ones (665/330/300
      // and 642/365/307 µs per delivery) where the peers' read within ~1.4x (more of pollgate to
      // compile). The publish path is warm from the delivery run just before each publish run.
      const warmupS = r === 0 ? 2.5 : 0.5;
      for (let j = 0; j < running.length; j++) {
        const target = running[(j + r) % running.length]!;
        log(`round ${r + 1}/${sizes.rounds}: ${target.name}: CPU per delivery and per publish`);
        const d = await attempt(`${target.name} delivery`, () => delivery(ctxOf(target), sizes.clients, warmupS, sizes.seconds));
        if (d) targets[target.name].deliveryRuns.push(d);
        const p = await attempt(`${target.name} publish`, () => publishOnly(ctxOf(target), sizes.streams, 0.3, sizes.seconds));
        if (p) targets[target.name].publishRuns.push(p);
      }
    }
  } finally {
    await Promise.all(running.map((t) => t.gw.stop()));
  }
  for (const t of Object.values(targets)) {
    t.delivery = median(t.deliveryRuns, (d) => d.cpuUsPerDelivery);
    t.publish = median(t.publishRuns, (p) => p.cpuUsPerPublish);
  }
  notes.push(...loadGeneratorBound(targets));
  const report: PeersReport = { sizes, seconds: Math.round((Date.now() - started) / 1000), targets, notes };
  return { ...report, ratios: peerRatios(report) };
}
