/**
 * `pollgate --workers N`: N gateway processes sharing one listening port through node:cluster,
 * so one machine's every core serves long-polls. Workers share nothing but Redis (parked polls,
 * subscriptions and caches are per worker), hence the Redis store is required.
 */
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import { ConfigError, type Config } from './config.js';
import { usesRedis } from './store/redis-target.js';

/** Parses `--workers N|auto` from argv; 1 (no cluster) when absent. Throws ConfigError. */
export function workersFromArgv(argv: readonly string[]): number {
  const i = argv.findIndex((a) => a === '--workers' || a.startsWith('--workers='));
  if (i < 0) return 1;
  const raw = argv[i]!.includes('=') ? argv[i]!.slice('--workers='.length) : argv[i + 1];
  if (raw === 'auto') return availableParallelism();
  if (!raw || !/^\d{1,3}$/.test(raw) || Number(raw) < 1) throw new ConfigError(`--workers must be a whole number from 1 or "auto" (got "${raw ?? ''}")`);
  return Number(raw);
}

/** The memory store lives in one process: workers would each hold a different log. */
export function assertClusterable(config: Config, workers: number): void {
  if (workers > 1 && !usesRedis(config.redis)) {
    throw new ConfigError('--workers needs the Redis store (set REDIS_URL): with the memory store each worker would keep its own log, and a message sent to one worker would never reach polls parked on another');
  }
}

/**
 * Runs in the primary: forks `workers` processes, replaces one that dies unexpectedly (at most
 * once a second), and on SIGTERM/SIGINT asks every worker to drain, exiting when all have.
 * A secret or API key generated for this run is handed to every worker, or a cursor or token
 * issued by one worker would be refused by the next.
 */
export function runPrimary(workers: number, config: Config, write: (line: string) => void): void {
  let stopping = false;
  let lastFork = 0;
  const env: Record<string, string> = {};
  if (config.generated.secret) env.POLLGATE_SECRET = config.auth.secret;
  if (config.generated.apiKey) {
    env.POLLGATE_API_KEYS = config.auth.apiKeys.join(',');
    write(`pollgate: dev API key for all ${workers} workers (this run only): ${config.generated.apiKey}`);
  }
  const fork = () => {
    lastFork = Date.now();
    cluster.fork(env);
  };
  for (let i = 0; i < workers; i++) fork();
  cluster.on('exit', (worker: Worker, code, signal) => {
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
      return;
    }
    write(`pollgate: worker ${worker.process.pid} exited (${signal ?? code}); starting another`);
    setTimeout(fork, Math.max(0, 1000 - (Date.now() - lastFork)));
  });
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    const alive = Object.values(cluster.workers ?? {});
    if (alive.length === 0) process.exit(0);
    for (const w of alive) w?.process.kill(signal);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGTERM'));
}

export const isPrimary = () => cluster.isPrimary;
