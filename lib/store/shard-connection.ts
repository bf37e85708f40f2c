/**
 * One sharded-pub/sub connection to one Redis Cluster node: SSUBSCRIBE and SUNSUBSCRIBE, each
 * answered by the replies to that very command, `smessage` pushes, and the `sunsubscribe` Redis
 * pushes on its own when a channel's slot leaves the node (a migration, a failover that demoted
 * it). It never reconnects: when it closes, its owner (sharded-subscriber.ts) makes another.
 */
import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { encodeCommand, RespError, RespParser, type RespValue } from './resp.js';

/** How to reach a node, from the cluster's seed URL (credentials and TLS apply to every node). */
export interface NodeAddress {
  host: string;
  port: number;
  tls: boolean;
  username?: string;
  password?: string;
}

export interface ShardConnectionEvents {
  message(channel: string, payload: string): void;
  /** Redis dropped a subscribed channel by itself: its slot is no longer served by this node. */
  dropped(channel: string): void;
  /** The connection is gone (never called after close()). */
  closed(err: Error): void;
}

interface Pending {
  /** 'simple' for AUTH and CLIENT SETNAME (one reply); else the channels still to be answered, in order. */
  kind: 'simple' | 'ssubscribe' | 'sunsubscribe';
  channels: string[];
  next: number;
  resolve(): void;
  reject(err: Error): void;
}

/** Channels of one SSUBSCRIBE must share a slot (Redis answers CROSSSLOT otherwise). */
export type SlotBatch = readonly string[];

export class ShardConnection {
  private socket?: Socket;
  private readonly pending: Pending[] = [];
  /** Channels this connection is subscribed to, as its replies and pushes say. */
  readonly channels = new Set<string>();
  private ended = false;

  constructor(readonly node: string, private readonly address: NodeAddress, private readonly events: ShardConnectionEvents) {}

  get isOpen(): boolean {
    return !this.ended && this.socket !== undefined;
  }

  /** Connects and authenticates within timeoutMs; rejects (and ends the connection) otherwise. */
  async connect(timeoutMs: number): Promise<void> {
    const { host, port, tls } = this.address;
    const socket = tls ? connectTls({ host, port, servername: host }) : connectTcp({ host, port });
    this.socket = socket;
    socket.setNoDelay(true);
    // A node that vanishes without a FIN (a partition, a killed VM) is noticed by keep-alive probes.
    socket.setKeepAlive(true, 10_000);
    const parser = new RespParser((reply) => this.onReply(reply));
    socket.on('data', (chunk: Buffer) => {
      try {
        parser.feed(chunk);
      } catch (err) {
        this.fail(err as Error);
      }
    });
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error(`connection to ${this.node} closed`)));
    const timer = setTimeout(() => this.fail(new Error(`connect to ${this.node} timed out`)), timeoutMs);
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once(tls ? 'secureConnect' : 'connect', resolve);
        socket.once('close', () => reject(new Error(`cannot connect to ${this.node}`)));
      });
      const { username, password } = this.address;
      const hello: Promise<void>[] = [];
      if (password) hello.push(this.send('simple', username ? ['AUTH', username, password] : ['AUTH', password], []));
      hello.push(this.send('simple', ['CLIENT', 'SETNAME', 'pollgate-wake'], []));
      await Promise.all(hello);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Sends one SSUBSCRIBE per batch in a single write; each promise resolves once Redis answered
   * every channel of its batch (wake-ups published after that reach this connection), or rejects
   * with Redis's error (MOVED, CLUSTERDOWN, ...) or when the connection closes first.
   */
  ssubscribe(batches: readonly SlotBatch[]): Promise<void>[] {
    return this.sendMany('ssubscribe', batches);
  }

  /** SUNSUBSCRIBE per batch, one write; the channels count as unsubscribed once answered. */
  sunsubscribe(batches: readonly SlotBatch[]): Promise<void>[] {
    return this.sendMany('sunsubscribe', batches);
  }

  /** Ends the connection; pending commands reject, no event follows. */
  close(): void {
    if (this.ended) return;
    this.ended = true;
    this.socket?.destroy();
    this.rejectPending(new Error(`connection to ${this.node} closed`));
  }

  private sendMany(kind: 'ssubscribe' | 'sunsubscribe', batches: readonly SlotBatch[]): Promise<void>[] {
    const name = kind === 'ssubscribe' ? 'SSUBSCRIBE' : 'SUNSUBSCRIBE';
    const frames: Buffer[] = [];
    const replies = batches.map((channels) => {
      frames.push(encodeCommand([name, ...channels]));
      return this.expect(kind, [...channels]);
    });
    if (this.isOpen && frames.length) this.socket!.write(frames.length === 1 ? frames[0]! : Buffer.concat(frames));
    return replies;
  }

  private send(kind: Pending['kind'], args: string[], channels: string[]): Promise<void> {
    const reply = this.expect(kind, channels);
    if (this.isOpen) this.socket!.write(encodeCommand(args));
    return reply;
  }

  private expect(kind: Pending['kind'], channels: string[]): Promise<void> {
    if (!this.isOpen) return Promise.reject(new Error(`connection to ${this.node} closed`));
    return new Promise<void>((resolve, reject) => this.pending.push({ kind, channels, next: 0, resolve, reject }));
  }

  private onReply(reply: RespValue): void {
    if (this.ended) return;
    const head = this.pending[0];
    if (reply instanceof RespError) {
      // Errors only ever answer a command: the oldest one waiting.
      if (!head) return this.fail(new Error(`unexpected error reply from ${this.node}: ${reply.message}`));
      this.pending.shift();
      return head.reject(new Error(reply.message));
    }
    if (!Array.isArray(reply)) {
      if (head?.kind !== 'simple') return this.fail(new Error(`unexpected reply from ${this.node}: ${String(reply)}`));
      this.pending.shift();
      return head.resolve();
    }
    const [type, channel, payload] = reply;
    if (type === 'smessage' && typeof channel === 'string') return this.events.message(channel, typeof payload === 'string' ? payload : '');
    if (typeof channel !== 'string') return;
    if (type === 'ssubscribe') {
      // Replies come in the order of the command's channels; anything else means we lost track.
      if (head?.kind !== 'ssubscribe' || head.channels[head.next] !== channel) return this.fail(new Error(`unmatched ssubscribe reply from ${this.node}`));
      this.channels.add(channel);
      return this.advance(head);
    }
    if (type === 'sunsubscribe') {
      this.channels.delete(channel);
      if (head?.kind === 'sunsubscribe' && head.channels[head.next] === channel) return this.advance(head);
      // Not an answer to ours: Redis unsubscribed us because the slot moved away from this node.
      this.events.dropped(channel);
    }
  }

  private advance(head: Pending): void {
    if (++head.next < head.channels.length) return;
    this.pending.shift();
    head.resolve();
  }

  private fail(err: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.socket?.destroy();
    this.rejectPending(err);
    this.events.closed(err);
  }

  private rejectPending(err: Error): void {
    for (const p of this.pending.splice(0)) p.reject(err);
  }
}
