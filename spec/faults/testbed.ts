/**
 * The system under test of the fault suite: one private Redis (AOF on, appendfsync everysec) and
 * three gateway processes on fixed ports, plus the faults the nemesis injects into them. Nothing
 * here touches a Redis or a process the testbed did not start.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnGateway, TEST_API_KEY, type ChildGateway } from '../support/gateway.js';
import { freePort } from '../support/ports.js';
import { redisClient, startRedisServer, type RedisServer } from '../support/redis.js';

const REDIS_ARGS = ['--appendfsync', 'everysec'];

export class Testbed {
  readonly apiKey = TEST_API_KEY;
  private redis!: RedisServer;
  private redisPort = 0;
  private readonly dir = mkdtempSync(join(tmpdir(), 'pollgate-faults-'));
  private readonly gateways: (ChildGateway | undefined)[] = [];
  private readonly ports: number[] = [];
  private paused = false;

  static async start(nodes = 3): Promise<Testbed> {
    const bed = new Testbed();
    try {
      await bed.boot(nodes);
    } catch (err) {
      await bed.stop();
      throw err;
    }
    return bed;
  }

  private async boot(nodes: number): Promise<void> {
    this.redisPort = await freePort();
    await this.startRedis();
    // Retention far above what a run sends, so a gap means a fault, not trimming.
    writeFileSync(join(this.dir, 'gateway.json'), JSON.stringify({
      retention: { default: { maxLength: 500_000 } },
      // Every client runs on this machine: per-IP caps and rates would measure themselves, not faults.
      limits: { parkedPerIp: 1_000_000 },
      rateLimits: { pollsPerIpPerSecond: 0, apiKeySendPerSecond: 0 },
    }));
    for (let i = 0; i < nodes; i++) this.ports.push(await freePort());
    await Promise.all(this.ports.map((_, i) => this.startGateway(i)));
  }

  get redisUrl(): string {
    return `redis://127.0.0.1:${this.redisPort}`;
  }

  /** URLs of the gateways that are up (all of them when none is: clients then retry). */
  nodes(): string[] {
    const up = this.gateways.filter((g): g is ChildGateway => g !== undefined).map((g) => g.url);
    return up.length ? up : this.ports.map((p) => `http://127.0.0.1:${p}`);
  }

  get size(): number {
    return this.ports.length;
  }

  async startGateway(i: number): Promise<void> {
    this.gateways[i] = await spawnGateway({
      PORT: String(this.ports[i]),
      REDIS_URL: this.redisUrl,
      POLLGATE_REDIS_PREFIX: 'faults:',
      POLLGATE_CONFIG: join(this.dir, 'gateway.json'),
    });
  }

  async killGateway(i: number): Promise<void> {
    const g = this.gateways[i];
    this.gateways[i] = undefined;
    await g?.kill();
  }

  async pauseRedis(): Promise<void> {
    this.paused = true;
    this.redis.process!.kill('SIGSTOP');
  }

  async resumeRedis(): Promise<void> {
    if (!this.paused) return;
    this.paused = false;
    this.redis.process!.kill('SIGCONT');
  }

  /** SIGKILL and restart on the same port and directory: the AOF is replayed, its unsynced tail lost. */
  async crashRedis(): Promise<number> {
    await this.resumeRedis();
    const at = Date.now();
    await this.redis.stop();
    await this.startRedis();
    return at;
  }

  /** Cuts every gateway's pub/sub connection (they re-subscribe and re-read). */
  async killPubsub(): Promise<void> {
    const admin = redisClient(this.redisUrl);
    try {
      await admin.client('KILL', 'TYPE', 'pubsub');
    } finally {
      admin.disconnect();
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.gateways.map((_, i) => this.killGateway(i)));
    if (this.redis) {
      await this.resumeRedis();
      await this.redis.stop();
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async startRedis(): Promise<void> {
    this.redis = await startRedisServer({ port: this.redisPort, dir: this.dir, appendonly: true, extraArgs: REDIS_ARGS });
  }
}
