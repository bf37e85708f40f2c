/**
 * A Lua script of ./lua, run with EVALSHA, and with EVAL when Redis does not know it (NOSCRIPT:
 * a new or restarted Redis, SCRIPT FLUSH, a failover, another cluster node), which also loads
 * it there: one NOSCRIPT reply per script and server after each of those. ioredis's
 * defineCommand sends EVAL first on every new connection instead, but wraps every call in a
 * Command subclass, a closure that replaces its reject, a copy of the arguments and a promise
 * chain (a Redis /send ran 4% fewer instructions without it; docs/PERFORMANCE.md).
 *
 * A script given `kept` is also a Redis 7 function, run with FCALL: a library of its own (named
 * after its source, so gateways of two versions sharing a Redis never run each other's) whose
 * `kept` prelude runs once per Lua state, not once per call. EVAL stays the way when FCALL is not
 * there: a Redis older than 7, or a server without the library yet (a new Redis, one restarted
 * without persistence, a new cluster master, the target of an ASK). The library is then loaded
 * there, for the next call.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Redis, Cluster } from 'ioredis';

export type Reply = (string | number)[];

type Client = Redis | Cluster;

/** A script's Redis function: its name and its library's source. */
interface LuaFunction {
  name: string;
  library: string;
}

export class LuaScript {
  readonly sha: string;
  private readonly source: string;
  private readonly fn?: LuaFunction;
  /** Clients that may not or cannot FCALL (Redis < 7, an ACL), or could not load the library. */
  private readonly evalOnly = new WeakSet<Client>();
  /** Clients loading the library now. */
  private readonly loading = new WeakSet<Client>();

  /**
   * `file` is the name in `dir` (default ./lua) without `.lua`; the first `numberOfKeys` arguments
   * are keys. `prelude` names a file of `dir` whose source goes first: Redis runs every script on
   * its own, so code several scripts share is joined to each here, not copied into each file.
   * `kept` names the prelude of the function form, which defines what `prelude` does, kept between
   * calls (server-info-kept.lua for server-info.lua).
   */
  constructor(file: string, private readonly numberOfKeys: number, dir = new URL('./lua/', import.meta.url), prelude?: string, kept?: string) {
    const read = (name: string) => readFileSync(fileURLToPath(new URL(`${name}.lua`, dir)), 'utf8');
    this.source = prelude ? `${read(prelude)}\n${read(file)}` : read(file);
    this.sha = createHash('sha1').update(this.source).digest('hex');
    if (kept) {
      const [keptSource, body] = [read(kept), read(file)];
      const name = `pollgate_${file.replace(/\W/g, '_')}_${createHash('sha1').update(keptSource).update(body).digest('hex').slice(0, 16)}`;
      const library = `#!lua name=${name}\n${keptSource}\nredis.register_function('${name}', function(KEYS, ARGV)\n${body}\nend)\n`;
      this.fn = { name, library };
    }
  }

  async run(client: Client, args: (string | number)[]): Promise<Reply> {
    if (this.fn && !this.evalOnly.has(client)) {
      try {
        return (await client.fcall(this.fn.name, this.numberOfKeys, ...args)) as Reply;
      } catch (err) {
        // Not run: fall through to EVAL, which gives the same answer.
        if (!this.functionMissing(client, err)) throw err;
      }
    }
    try {
      return (await client.evalsha(this.sha, this.numberOfKeys, ...args)) as Reply;
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      // EVAL also caches the script on that server: the next EVALSHA finds it.
      return (await client.eval(this.source, this.numberOfKeys, ...args)) as Reply;
    }
  }

  /**
   * Whether `err` says FCALL ran nothing: no such function there (it is loaded, for the next
   * call), or no FCALL for this client at all (a Redis older than 7, or an ACL that allows EVAL
   * but not FCALL: EVAL from then on).
   */
  private functionMissing(client: Client, err: unknown): boolean {
    const message = err instanceof Error ? err.message : '';
    if ((/unknown command/i.test(message) || message.startsWith('NOPERM')) && /fcall/i.test(message)) {
      this.evalOnly.add(client);
      return true;
    }
    if (!/function not found/i.test(message)) return false;
    if (!this.loading.has(client)) {
      this.loading.add(client);
      this.load(client).then(
        () => this.loading.delete(client),
        () => (this.loading.delete(client), this.evalOnly.add(client)),
      );
    }
    return true;
  }

  /** FUNCTION LOAD on the server, or on every master of a cluster (replicas copy it). */
  private async load(client: Client): Promise<void> {
    const library = this.fn!.library;
    const servers = client.isCluster ? (client as Cluster).nodes('master') : [client as Redis];
    await Promise.all(servers.map((server) => server.call('FUNCTION', 'LOAD', 'REPLACE', library)));
  }

  /**
   * Runs the script on the target of an ASK redirection (a slot being migrated): ASKING, then
   * EVAL in the same write, since ASKING holds for one command only (an EVALSHA answered NOSCRIPT
   * would use it up).
   */
  async runAsking(client: Redis, args: (string | number)[]): Promise<Reply> {
    const results = (await client.pipeline().asking().eval(this.source, this.numberOfKeys, ...args).exec()) ?? [];
    const [, [err, reply] = [new Error('no reply to EVAL after ASKING')]] = results;
    if (err) throw err;
    return reply as Reply;
  }
}
