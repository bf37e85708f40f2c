/**
 * The nemesis: one fault at a time, at random moments, until told to stop. Every fault is healed
 * before the next one starts, and the log of what happened when goes into the report.
 */
import type { Testbed } from './testbed.js';

export type Fault = 'kill-gateway' | 'pause-redis' | 'crash-redis' | 'kill-pubsub' | 'drop-clients';

export const FAULTS: readonly Fault[] = ['kill-gateway', 'pause-redis', 'crash-redis', 'kill-pubsub', 'drop-clients'];

export interface NemesisOptions {
  bed: Testbed;
  /** Cuts every client connection in flight (pollers and senders). */
  dropClients: () => void;
  /** Quiet time between faults (ms), drawn uniformly. */
  quietMs: [number, number];
}

const between = ([lo, hi]: [number, number]) => lo + Math.random() * (hi - lo);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Nemesis {
  readonly log: string[] = [];
  readonly redisCrashes: number[] = [];
  readonly counts = new Map<Fault, number>(FAULTS.map((f) => [f, 0]));
  private stopped = false;
  private loop?: Promise<void>;
  private wake?: () => void;

  constructor(private readonly options: NemesisOptions) {}

  start(): void {
    this.loop = this.run();
  }

  /** Heals the fault in progress and resolves once every node and Redis are up again. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
  }

  private note(what: string): void {
    this.log.push(`${new Date().toISOString()} ${what}`);
  }

  /** Sleeps, but returns early when the nemesis is stopped. */
  private async pause(ms: number): Promise<void> {
    await Promise.race([sleep(ms), new Promise<void>((r) => (this.wake = r))]);
  }

  private async run(): Promise<void> {
    const { bed } = this.options;
    while (!this.stopped) {
      await this.pause(between(this.options.quietMs));
      if (this.stopped) break;
      const fault = FAULTS[Math.floor(Math.random() * FAULTS.length)]!;
      this.counts.set(fault, this.counts.get(fault)! + 1);
      switch (fault) {
        case 'kill-gateway': {
          const i = Math.floor(Math.random() * bed.size);
          this.note(`SIGKILL gateway ${i}`);
          await bed.killGateway(i);
          await this.pause(between([300, 2000]));
          await bed.startGateway(i);
          this.note(`gateway ${i} restarted`);
          break;
        }
        case 'pause-redis': {
          const ms = between([1000, 5000]);
          this.note(`SIGSTOP redis for ${Math.round(ms)} ms`);
          await bed.pauseRedis();
          await this.pause(ms);
          await bed.resumeRedis();
          this.note('SIGCONT redis');
          break;
        }
        case 'crash-redis': {
          const at = await bed.crashRedis();
          this.redisCrashes.push(at);
          this.note(`SIGKILL redis at ${new Date(at).toISOString()}, restarted from its AOF`);
          break;
        }
        case 'kill-pubsub':
          this.note('CLIENT KILL TYPE pubsub');
          await bed.killPubsub();
          break;
        case 'drop-clients':
          this.note('cut every client connection in flight');
          this.options.dropClients();
          break;
      }
    }
  }
}
