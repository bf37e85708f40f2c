/**
 * Presence in Redis, exact across gateway processes. Per stream S: a zset of members
 * (`<node>|<session>|<subject>` -> expiry, ms) and a hash of subject -> members, changed together
 * by the scripts in ./presence-lua, which also expire dead members and report the joins and leaves
 * they caused. Each node writes its own members again every `heartbeatMs` with expiry now + `ttlMs`,
 * so the members of a node killed with SIGKILL are gone from every answer `ttlMs` after its last
 * heartbeat. An index zset (stream -> latest expiry) lets every live node find the streams whose
 * members all expired and announce their leaves within one heartbeat more.
 * Expiries are compared with the reading node's clock: skew between nodes moves them by as much.
 */
import type { Member, PresenceBackend, PresenceChange, PresenceEntry } from '../presence.js';
import { LuaScript, type Reply } from './lua-script.js';
import type { RedisControl } from './redis-control.js';

export interface RedisPresenceOptions {
  heartbeatMs: number;
  ttlMs: number;
}

const DIR = new URL('./presence-lua/', import.meta.url);
/** Streams swept per heartbeat at most (oldest expiry first). */
const SWEEP_BATCH = 100;

function changesOf(flat: readonly unknown[]): PresenceChange[] {
  const out: PresenceChange[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push({ type: flat[i] === 'join' ? 'join' : 'leave', sub: String(flat[i + 1]) });
  return out;
}

export class RedisPresence implements PresenceBackend {
  private readonly addScript = new LuaScript('presence-add-2', 2, DIR, 'presence-expire');
  private readonly removeScript = new LuaScript('presence-remove-2', 2, DIR, 'presence-expire');
  private readonly listScript = new LuaScript('presence-list-2', 2, DIR, 'presence-expire');
  /** This node's members, by stream: what each heartbeat writes again. */
  private readonly mine = new Map<string, Map<string, string>>();
  private readonly heartbeat: NodeJS.Timeout;
  private listener?: (stream: string, changes: PresenceChange[]) => void;

  constructor(private readonly redis: RedisControl, private readonly options: RedisPresenceOptions) {
    this.heartbeat = setInterval(() => void this.beat(), options.heartbeatMs);
    this.heartbeat.unref();
  }

  async add(stream: string, member: Member): Promise<PresenceChange[]> {
    let members = this.mine.get(stream);
    if (!members) this.mine.set(stream, (members = new Map()));
    members.set(member.id, member.sub);
    return this.write(stream, [member.id, member.sub]);
  }

  async remove(stream: string, member: Member): Promise<PresenceChange[]> {
    const members = this.mine.get(stream);
    members?.delete(member.id);
    if (members?.size === 0) this.mine.delete(stream);
    const reply = await this.redis.run((cmd) => this.removeScript.run(cmd, [...this.keys(stream), Date.now(), member.id, member.sub]));
    return changesOf(reply);
  }

  async list(stream: string): Promise<{ entries: PresenceEntry[]; changes: PresenceChange[] }> {
    const reply = await this.redis.run((cmd) => this.listScript.run(cmd, [...this.keys(stream), Date.now()]));
    const [changes, counts] = reply as unknown as [Reply, Reply];
    const entries: PresenceEntry[] = [];
    for (let i = 0; i + 1 < counts.length; i += 2) entries.push({ sub: String(counts[i]), connections: Number(counts[i + 1]) });
    return { entries, changes: changesOf(changes) };
  }

  onChanges(listener: (stream: string, changes: PresenceChange[]) => void): void {
    this.listener = listener;
  }

  async close(): Promise<void> {
    clearInterval(this.heartbeat);
    // Leave at once rather than at expiry: a clean shutdown takes its members along.
    await Promise.allSettled([...this.mine].map(([stream, members]) =>
      this.redis.run((cmd) => this.removeScript.run(cmd, [...this.keys(stream), Date.now(), ...[...members].flat()]))
        .then((reply) => this.listener?.(stream, changesOf(reply)))));
    this.mine.clear();
  }

  private keys(stream: string): [string, string] {
    return [this.redis.key(`pres:{${stream}}:m`), this.redis.key(`pres:{${stream}}:n`)];
  }

  private async write(stream: string, pairs: string[]): Promise<PresenceChange[]> {
    const now = Date.now();
    const expires = now + this.options.ttlMs;
    const reply = await this.redis.run(async (cmd) => {
      const r = await this.addScript.run(cmd, [...this.keys(stream), now, expires, this.options.ttlMs * 2, ...pairs]);
      await cmd.zadd(this.redis.key('pres:index'), 'GT', expires, stream);
      return r;
    });
    return changesOf(reply);
  }

  /** Writes every member of this node again, then expires the streams of nodes that stopped writing. */
  private async beat(): Promise<void> {
    try {
      await Promise.all([...this.mine].map(async ([stream, members]) => {
        const changes = await this.write(stream, [...members].flat());
        if (changes.length) this.listener?.(stream, changes);
      }));
      const index = this.redis.key('pres:index');
      const stale = await this.redis.run((cmd) => cmd.zrangebyscore(index, '-inf', Date.now(), 'LIMIT', 0, SWEEP_BATCH));
      for (const stream of stale) {
        const { entries, changes } = await this.list(stream);
        if (changes.length) this.listener?.(stream, changes);
        if (entries.length === 0) await this.redis.run((cmd) => cmd.zrem(index, stream));
      }
    } catch {
      // Redis is away: the next heartbeat writes everything again (run() logged it).
    }
  }
}
