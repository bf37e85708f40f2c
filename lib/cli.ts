#!/usr/bin/env node
/**
 * `pollgate` / `npm start`: load config (files and environment), start the standalone server
 * (lib/server.ts, a thin user of the gateway library), announce, and drain on SIGTERM/SIGINT.
 * `pollgate --workers N|auto` runs N such processes on one port (lib/cluster.ts; Redis store only).
 *
 * `npm start` runs Node with a 32 MB young generation (package.json's start script; checked by
 * spec/start-flags.spec.ts): at V8's default of 16 MB a scavenge came often enough that every
 * in-flight request and parked poll was copied and promoted, and GC cost 28 µs a /send against
 * 4 at 32 MB (docs/PERFORMANCE.md, "The young generation"). V8 reads the size only at start, so
 * it is a flag. The bin cannot carry it: `#!/usr/bin/env -S node ...` fails where env is
 * BusyBox's (Alpine images), which has no -S. The bin and host apps set it with NODE_OPTIONS.
 */
import { assertClusterable, isPrimary, runPrimary, workersFromArgv } from './cluster.js';
import { ConfigError, loadConfig } from './config.js';
import { start } from './server.js';

async function main(): Promise<void> {
  let config;
  let workers;
  try {
    config = loadConfig();
    workers = workersFromArgv(process.argv.slice(2));
    assertClusterable(config, workers);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`pollgate: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  if (workers > 1 && isPrimary()) {
    runPrimary(workers, config, (line) => process.stderr.write(`${line}\n`));
    return;
  }
  const gateway = await start(config);
  const { log } = gateway;
  log.info({ port: gateway.port, store: gateway.store.kind, env: config.env }, 'listening');
  if (config.generated.secret) log.warn('auth.secret was generated for this run: tokens and cursors will not survive a restart (set POLLGATE_SECRET)');
  if (config.generated.apiKey) {
    // Development only (production refuses to start without keys): the developer needs one to try /send.
    process.stdout.write(
      `\npollgate ${config.env} mode on http://localhost:${gateway.port}/\n` +
        `  dev API key (this run only): ${config.generated.apiKey}\n` +
        `  try: curl -s -XPOST localhost:${gateway.port}/send -H 'Authorization: Bearer ${config.generated.apiKey}' -H 'Content-Type: application/json' -d '{"stream":"room:1","data":"hi"}'\n\n`,
    );
  }

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, parked: gateway.longPolls.size }, 'draining');
    gateway.shutdown().then(
      () => {
        log.info('stopped');
        process.exit(0);
      },
      (err: Error) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: Error) => {
  process.stderr.write(`pollgate: failed to start: ${err.message}\n`);
  process.exit(1);
});
