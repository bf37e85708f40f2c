/**
 * Appends that wait for durability (redis.ackDurability "replicas" or "aof"). They run on
 * connections of their own, because WAIT blocks the connection it runs on, and share their
 * confirmations (group commit): one WAIT or WAITAOF at a time per connection, covering every
 * append answered on it before it was sent. On a single Redis that is one connection; on a
 * cluster it is one per master, and each append runs on the connection to the master that owns its
 * stream's slot, so the WAIT that follows it on that connection confirms exactly that write.
 */
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from '../log.js';
import type { Reply } from './lua-script.js';

export interface AckOptions {
  durability: 'replicas' | 'aof';
  replicas: number;
  timeoutMs: number;
}

/** An append to run: on `client` as is, or (asking) as the target of an ASK redirection. */
export type AppendOp = (client: Redis, asking: boolean) => Promise<Reply>;

/** Where appends run before their confirmation. */
export interface DurableAppends {
  /** Runs the append where a WAIT can confirm it; resolves with the reply and that connection. */
  run(slot: number, op: AppendOp): Promise<{ reply: Reply; on: Redis }>;
  /** Whether every append answered so far on `on` is durable as configured (a shared WAIT/WAITAOF). */
  confirm(on: Redis): Promise<boolean>;
  connect(): Promise<void>;
  /** Refuses an ackDurability the Redis servers cannot honour, with a message naming the setting. */
  checkSupport(): Promise<void>;
  close(): Promise<void>;
  /** The connections open now (for error listeners and tests). */
  readonly clients: readonly Redis[];
}

/** The confirmations of one connection: one WAIT/WAITAOF in flight, the next shared by everything answered meanwhile. */
class GroupCommit {
  private next?: Promise<boolean>;
  private last: Promise<unknown> = Promise.resolve();

  constructor(private readonly client: Redis, private readonly ack: AckOptions) {}

  confirm(): Promise<boolean> {
    if (!this.next) {
      const sent = this.last.then(() => {
        this.next = undefined;
        return this.waitForDurability();
      });
      this.last = sent.catch(() => undefined);
      this.next = sent;
    }
    return this.next;
  }

  private async waitForDurability(): Promise<boolean> {
    const { durability, replicas, timeoutMs } = this.ack;
    if (durability === 'replicas') return Number(await this.client.call('WAIT', replicas, timeoutMs)) >= replicas;
    const [local] = (await this.client.call('WAITAOF', 1, 0, timeoutMs)) as number[];
    return Number(local) >= 1;
  }
}

/** INFO of one server, checked against the ackDurability asked for. */
async function checkServer(client: Redis, where: string, ack: AckOptions, log: Logger): Promise<void> {
  const info = await client.info();
  const field = (name: string) => new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim() ?? '';
  const version = field('redis_version');
  const [major = 0, minor = 0] = version.split('.').map(Number);
  if (ack.durability === 'aof') {
    if (major < 7 || (major === 7 && minor < 2)) {
      throw new Error(`redis.ackDurability "aof" needs WAITAOF (Redis >= 7.2); ${where} runs Redis ${version}. Use "replicas" or "none", or upgrade Redis`);
    }
    if (field('aof_enabled') !== '1') throw new Error(`redis.ackDurability "aof" needs appendonly yes on ${where}`);
  } else if (Number(field('connected_slaves')) < ack.replicas) {
    log.warn({ server: where, replicas: Number(field('connected_slaves')), needed: ack.replicas }, 'fewer replicas than redis.ackReplicas: sends answer 503 until they connect');
  }
}

/** A single Redis (or a Sentinel-managed primary): one connection for appends and their WAITs. */
export class SingleDurableAppends implements DurableAppends {
  private readonly client: Redis;
  private readonly commits: GroupCommit;

  /** `client` is a connection of its own (lazyConnect, no auto-pipelining) to the server or primary `where` names. */
  constructor(private readonly where: string, client: Redis, private readonly ack: AckOptions, private readonly log: Logger) {
    this.client = client;
    this.commits = new GroupCommit(client, ack);
  }

  get clients(): readonly Redis[] {
    return [this.client];
  }

  async run(_slot: number, op: AppendOp): Promise<{ reply: Reply; on: Redis }> {
    return { reply: await op(this.client, false), on: this.client };
  }

  confirm(): Promise<boolean> {
    return this.commits.confirm();
  }

  async connect(): Promise<void> {
    await this.client.connect();
  }

  checkSupport(): Promise<void> {
    return checkServer(this.client, this.where, this.ack, this.log);
  }

  async close(): Promise<void> {
    await this.client.quit().catch(() => undefined);
    this.client.disconnect();
  }
}

/** The cluster's slot map, as the command client knows it. */
export interface SlotOwners {
  /** The master serving a slot ("host:port"), or undefined before the map is known. */
  owner(slot: number): string | undefined;
  /** Every master now. */
  masters(): string[];
  /** Refreshes the map; resolves when done, even if it failed. */
  refresh(): Promise<void>;
}

/** Redirections and retries one append may take (MOVED, ASK, TRYAGAIN while a slot migrates). */
const MAX_REDIRECTIONS = 5;

/**
 * A Redis Cluster: a connection per master, made on first use. An append runs on the owner of
 * its slot; MOVED sends it to the node named (and refreshes the map), ASK runs it there after
 * ASKING, TRYAGAIN waits a moment. None of these ran the script, so retrying is safe.
 */
export class ClusterDurableAppends implements DurableAppends {
  private readonly connections = new Map<string, { client: Redis; ready: Promise<void>; commits: GroupCommit }>();
  private closed = false;

  constructor(private readonly owners: SlotOwners, private readonly options: (node: string) => RedisOptions, private readonly ack: AckOptions, private readonly log: Logger) {}

  get clients(): readonly Redis[] {
    return [...this.connections.values()].map((c) => c.client);
  }

  async run(slot: number, op: AppendOp): Promise<{ reply: Reply; on: Redis }> {
    let node = this.owners.owner(slot);
    let asking = false;
    for (let attempt = 0; ; attempt++) {
      if (!node) throw new Error(`CLUSTERDOWN no known owner for slot ${slot}`);
      const { client } = await this.connection(node);
      try {
        return { reply: await op(client, asking), on: client };
      } catch (err) {
        const message = (err as Error).message ?? '';
        const redirect = /^(MOVED|ASK) \d+ (\S+)/.exec(message);
        if (attempt >= MAX_REDIRECTIONS || (!redirect && !message.startsWith('TRYAGAIN'))) throw err;
        if (redirect?.[1] === 'MOVED') void this.owners.refresh();
        if (!redirect) await new Promise((r) => setTimeout(r, 25));
        node = redirect ? redirect[2] : this.owners.owner(slot);
        asking = redirect?.[1] === 'ASK';
      }
    }
  }

  confirm(on: Redis): Promise<boolean> {
    for (const c of this.connections.values()) if (c.client === on) return c.commits.confirm();
    // Its connection was closed meanwhile: nothing can confirm the write any more.
    return Promise.resolve(false);
  }

  /** Connections are made per master on first use. */
  async connect(): Promise<void> {}

  async checkSupport(): Promise<void> {
    for (const node of this.owners.masters()) await checkServer((await this.connection(node)).client, node, this.ack, this.log);
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.connections.values()];
    this.connections.clear();
    await Promise.all(all.map(async ({ client }) => {
      await client.quit().catch(() => undefined);
      client.disconnect();
    }));
  }

  /** Closes the connections to nodes that are no longer masters (failed over, removed). */
  private prune(): void {
    const masters = new Set(this.owners.masters());
    for (const [node, { client }] of this.connections) {
      if (masters.has(node)) continue;
      this.connections.delete(node);
      client.disconnect();
    }
  }

  private async connection(node: string): Promise<{ client: Redis; ready: Promise<void>; commits: GroupCommit }> {
    if (this.closed) throw new Error('store closed');
    let known = this.connections.get(node);
    if (!known) {
      const client = new Redis({ ...this.options(node), enableAutoPipelining: false, lazyConnect: true });
      client.on('error', (err: Error) => this.log.warn({ node, err: err.message }, 'redis connection error'));
      // A node that is gone for good (failed over, removed) is dropped; the next use connects again.
      client.on('end', () => {
        if (this.connections.get(node)?.client === client) this.connections.delete(node);
      });
      const entry = { client, ready: client.connect(), commits: new GroupCommit(client, this.ack) };
      entry.ready.catch(() => {
        // Unreachable now (a dead master): the next append connects afresh, wherever its slot is then.
        if (this.connections.get(node) === entry) this.connections.delete(node);
        client.disconnect();
      });
      this.prune();
      this.connections.set(node, (known = entry));
    }
    await known.ready;
    return known;
  }
}
