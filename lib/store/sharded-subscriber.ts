/**
 * Wake-up channels on a Redis Cluster through sharded pub/sub: one ShardConnection per master
 * that serves a subscribed channel's slot, SSUBSCRIBEs batched per slot and written together per
 * node. A subscription counts only once the node that owns its slot answered it. When that stops
 * being true (the connection drops, Redis pushes `sunsubscribe` because the slot moved, or the
 * cluster's slot map names another owner) the channel is forgotten and reported lost, so the
 * owner subscribes again and re-reads: a lost wake-up costs latency, never a message.
 */
import type { Logger } from '../log.js';
import { ShardConnection, type NodeAddress } from './shard-connection.js';

/** The cluster's slot map, as the command client knows it. */
export interface ClusterTopology {
  /** The master serving a slot now ("host:port"), or undefined before the map is known. */
  owner(slot: number): string | undefined;
  /** Asks the cluster for its slot map again; resolves when that is done, even if it failed. */
  refresh(): Promise<void>;
}

export interface ShardedSubscriberOptions {
  topology: ClusterTopology;
  /** How to connect to a node named by the slot map. */
  address(node: string): NodeAddress;
  connectTimeoutMs: number;
  log: Logger;
}

export interface ShardedSubscriberEvents {
  message(channel: string, payload: string): void;
  /**
   * These channels were subscribed and may have missed wake-ups since (their connection dropped,
   * or their slot moved): they are forgotten here, subscribe them again, then re-read.
   */
  lost(channels: string[]): void;
}

interface Request {
  channel: string;
  slot: number;
  /** The node the SSUBSCRIBE went to (in flight or answered). */
  node?: string;
  done: boolean;
  attempts: number;
  promise: Promise<void>;
  resolve(): void;
  reject(err: Error): void;
}

interface Node {
  connection: ShardConnection;
  ready: Promise<void>;
}

/** Longest pause between attempts to subscribe a channel whose node is unreachable or moved, ms. */
const MAX_BACKOFF_MS = 1000;

export class ShardedSubscriber {
  /** The current subscription of each wanted channel. */
  private readonly requests = new Map<string, Request>();
  private readonly nodes = new Map<string, Node>();
  private queue: Request[] = [];
  private flushing?: NodeJS.Immediate;
  private retries: Request[] = [];
  private retryTimer?: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly options: ShardedSubscriberOptions, private readonly events: ShardedSubscriberEvents) {}

  /** Connections open (one per master serving a subscribed slot). */
  get connectionCount(): number {
    return this.nodes.size;
  }

  /**
   * Resolves once the master owning `slot` answered the channel's SSUBSCRIBE. Unreachable nodes,
   * MOVED and CLUSTERDOWN are retried with backoff until then; rejects only when closed.
   */
  subscribe(channel: string, slot: number): Promise<void> {
    const known = this.requests.get(channel);
    if (known) return known.promise;
    const request = { channel, slot, done: false, attempts: 0 } as Request;
    request.promise = new Promise<void>((resolve, reject) => {
      request.resolve = resolve;
      request.reject = reject;
    });
    // Nobody may be waiting (a resubscription): a rejection at close() is not an error.
    request.promise.catch(() => undefined);
    if (this.closed) request.reject(new Error('subscriber closed'));
    this.requests.set(channel, request);
    this.enqueue(request);
    return request.promise;
  }

  /** The node whose answer confirmed the channel's subscription, or undefined while there is none. */
  confirmedAt(channel: string): string | undefined {
    const request = this.requests.get(channel);
    return request?.done ? request.node : undefined;
  }

  /** Forgets the channel and sends SUNSUBSCRIBE where its SSUBSCRIBE went. */
  async unsubscribe(channel: string): Promise<void> {
    const request = this.requests.get(channel);
    if (!request) return;
    this.requests.delete(channel);
    request.resolve();
    const node = request.node && this.nodes.get(request.node);
    if (!node) return;
    try {
      // After the connection's AUTH; on the connection its SSUBSCRIBE used, so it is answered after it.
      await node.ready;
      if (node.connection.isOpen) await node.connection.sunsubscribe([[channel]])[0];
    } catch (err) {
      this.options.log.debug({ err: (err as Error).message, channel }, 'sunsubscribe failed');
    }
  }

  /**
   * The slot map changed: a subscription on a node that no longer owns its slot hears nothing
   * from the new owner (a partition healed, a failover we had no connection event for).
   */
  checkOwners(): void {
    const moved: Request[] = [];
    for (const request of this.requests.values()) {
      if (!request.done || request.node === this.options.topology.owner(request.slot)) continue;
      moved.push(request);
    }
    if (!moved.length) return;
    for (const r of moved) {
      this.requests.delete(r.channel);
      const node = this.nodes.get(r.node!);
      if (node?.connection.isOpen) void node.connection.sunsubscribe([[r.channel]])[0]!.catch(() => undefined);
    }
    this.options.log.info({ channels: moved.length }, 'slots moved: subscribing again where they are now');
    this.events.lost(moved.map((r) => r.channel));
  }

  /** Closes every connection; pending subscriptions reject. */
  close(): void {
    this.closed = true;
    if (this.flushing) clearImmediate(this.flushing);
    clearTimeout(this.retryTimer);
    for (const request of this.requests.values()) request.reject(new Error('subscriber closed'));
    this.requests.clear();
    this.queue = [];
    this.retries = [];
    for (const node of this.nodes.values()) node.connection.close();
    this.nodes.clear();
  }

  private enqueue(request: Request): void {
    if (this.closed) return;
    this.queue.push(request);
    // Everything subscribed in this turn of the event loop leaves in one write per node.
    this.flushing ??= setImmediate(() => {
      this.flushing = undefined;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    const byNode = new Map<string, Map<number, Request[]>>();
    for (const request of this.queue.splice(0)) {
      if (this.requests.get(request.channel) !== request || request.node) continue;
      const owner = this.options.topology.owner(request.slot);
      if (!owner) {
        this.retry(request, new Error(`no known owner for slot ${request.slot}`));
        continue;
      }
      request.node = owner;
      let slots = byNode.get(owner);
      if (!slots) byNode.set(owner, (slots = new Map()));
      const batch = slots.get(request.slot);
      if (batch) batch.push(request);
      else slots.set(request.slot, [request]);
    }
    await Promise.all([...byNode].map(([owner, slots]) => this.send(owner, [...slots.values()])));
  }

  private async send(owner: string, batches: Request[][]): Promise<void> {
    let node: Node;
    try {
      node = this.node(owner);
      await node.ready;
    } catch (err) {
      for (const batch of batches) for (const r of batch) this.retry(r, err as Error);
      return;
    }
    const replies = node.connection.ssubscribe(batches.map((batch) => batch.map((r) => r.channel)));
    await Promise.all(replies.map((reply, i) => reply.then(
      () => {
        for (const r of batches[i]!) {
          if (this.requests.get(r.channel) !== r) continue;
          r.done = true;
          r.attempts = 0;
          r.resolve();
        }
      },
      (err: Error) => {
        for (const r of batches[i]!) this.retry(r, err);
      },
    )));
  }

  /** The node's connection, made on first use. */
  private node(name: string): Node {
    const known = this.nodes.get(name);
    if (known) return known;
    const connection: ShardConnection = new ShardConnection(name, this.options.address(name), {
      message: (channel, payload) => this.events.message(channel, payload),
      dropped: (channel) => this.onDropped(connection, channel),
      closed: (err) => this.onClosed(connection, err),
    });
    const node: Node = { connection, ready: connection.connect(this.options.connectTimeoutMs) };
    node.ready.catch(() => undefined);
    this.nodes.set(name, node);
    return node;
  }

  /** Tries again after a backoff and a fresh slot map (it may be MOVED, or the node died). */
  private retry(request: Request, err: Error): void {
    if (this.closed || this.requests.get(request.channel) !== request) return;
    request.node = undefined;
    request.attempts++;
    this.options.log.debug({ channel: request.channel, attempts: request.attempts, err: err.message }, 'ssubscribe failed: retrying');
    this.retries.push(request);
    if (this.retryTimer) return;
    const delay = Math.min(MAX_BACKOFF_MS, 25 * 2 ** Math.min(request.attempts, 6));
    this.retryTimer = setTimeout(() => {
      this.options.topology.refresh().then(() => {
        this.retryTimer = undefined;
        for (const r of this.retries.splice(0)) this.enqueue(r);
      }, () => undefined);
    }, delay * (0.5 + Math.random() / 2));
  }

  private onDropped(connection: ShardConnection, channel: string): void {
    const request = this.requests.get(channel);
    if (!request?.done || request.node !== connection.node) return;
    this.requests.delete(channel);
    this.events.lost([channel]);
    void this.options.topology.refresh();
  }

  private onClosed(connection: ShardConnection, err: Error): void {
    if (this.nodes.get(connection.node)?.connection === connection) this.nodes.delete(connection.node);
    const lost: string[] = [];
    for (const request of this.requests.values()) {
      // Not yet answered: its SSUBSCRIBE rejects and is retried.
      if (!request.done || request.node !== connection.node) continue;
      lost.push(request.channel);
    }
    for (const channel of lost) this.requests.delete(channel);
    this.options.log[lost.length ? 'warn' : 'debug']({ node: connection.node, err: err.message, channels: lost.length }, 'sharded subscriber connection lost');
    void this.options.topology.refresh();
    if (lost.length) this.events.lost(lost);
  }
}
