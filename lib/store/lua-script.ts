/**
 * A Lua script of ./lua, run with EVALSHA, and with EVAL when Redis does not know it (NOSCRIPT:
 * a new or restarted Redis, SCRIPT FLUSH, a failover, another cluster node), which also loads
 * it there: one NOSCRIPT reply per script and server after each of those. ioredis's
 * defineCommand sends EVAL first on every new connection instead, but wraps every call in a
 * Command subclass, a closure that replaces its reject, a copy of the arguments and a promise
 * chain (a Redis /send ran 4% fewer instructions without it; docs/PERFORMANCE.md).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Redis, Cluster } from 'ioredis';

export type Reply = (string | number)[];

export class LuaScript {
  readonly sha: string;
  private readonly source: string;

  /**
   * `file` is the name in `dir` (default ./lua) without `.lua`; the first `numberOfKeys` arguments
   * are keys. `prelude` names a file of `dir` whose source goes first: Redis runs every script on
   * its own, so code several scripts share is joined to each here, not copied into each file.
   */
  constructor(file: string, private readonly numberOfKeys: number, dir = new URL('./lua/', import.meta.url), prelude?: string) {
    const read = (name: string) => readFileSync(fileURLToPath(new URL(`${name}.lua`, dir)), 'utf8');
    this.source = prelude ? `${read(prelude)}\n${read(file)}` : read(file);
    this.sha = createHash('sha1').update(this.source).digest('hex');
  }

  async run(client: Redis | Cluster, args: (string | number)[]): Promise<Reply> {
    try {
      return (await client.evalsha(this.sha, this.numberOfKeys, ...args)) as Reply;
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      // EVAL also caches the script on that server: the next EVALSHA finds it.
      return (await client.eval(this.source, this.numberOfKeys, ...args)) as Reply;
    }
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
