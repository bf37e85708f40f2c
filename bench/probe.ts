/**
 * A quick A/B probe while optimizing (not part of `npm run bench`): send-only and the targeted
 * maximum on one store, optionally under --cpu-prof. Prints CPU µs per send and per delivery.
 *
 *   node dist/bench/probe.js [--store=memory|redis] [--clients=N] [--seconds=S] [--prof=DIR] [--only=send,targeted]
 *                            [--transport=poll|ws|sse] [--node-options=...] [--node-flags=a,b]
 *                            [--long-poll-floor]  (targeted only: bench/long-poll-floor-server.ts in the gateway's place)
 *                            [--config=FILE]  the gateway's POLLGATE_CONFIG instead of bench/gateway-config.json
 *                                             (bench/rate-limits-on.json: the default rate limits, measured on)
 */
import { readerToken, Violations } from './client.js';
import { sendOnly } from './scenarios/send-only.js';
import { parkedMemory } from './scenarios/parked.js';
import { fanout } from './scenarios/fanout.js';
import { connectedMemory } from './scenarios/connected.js';
import { LONG_POLL_FLOOR, fanoutFloor } from './scenarios/floor.js';
import { targeted } from './scenarios/targeted.js';
import type { Transport } from './stream-client.js';
import { startRedisServer } from '../spec/support/redis.js';
import { withGateway } from './scenarios/context.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { option } from './args.js';

const args = process.argv.slice(2);
const store = option('store', 'memory') as 'memory' | 'redis';
const clients = Number(option('clients', '1000'));
const seconds = Number(option('seconds', '3'));
const prof = option('prof', '');
const only = option('only', 'send,targeted').split(',');
const transport = option('transport', 'poll') as Transport;
/** e.g. --node-options="--heap-prof --heap-prof-dir=/tmp/hp" (passed to the gateway as NODE_OPTIONS). */
const nodeOptions = option('node-options', '');
/** e.g. --node-flags=--trace-gc,--trace-gc-verbose: flags NODE_OPTIONS refuses (the gateway's log file gets their lines). */
const nodeFlags = option('node-flags', '').split(',').filter(Boolean);

async function main(): Promise<void> {
  const redis = store === 'redis' ? await startRedisServer() : undefined;
  const violations = new Violations();
  const setup = {
    store, redis, violations, token: await readerToken(), maxClients: 15000,
    logLevel: option('log', 'warn'), logFile: join(tmpdir(), 'probe-gateway.log'), cpuProfDir: prof || undefined,
    extraEnv: {
      ...(nodeOptions ? { NODE_OPTIONS: nodeOptions } : {}),
      ...(option('config', '') ? { POLLGATE_CONFIG: option('config', '') } : {}),
    },
    nodeFlags,
    script: args.includes('--long-poll-floor') ? LONG_POLL_FLOOR : undefined,
  };
  try {
    await withGateway(setup, async (ctx) => {
      if (only.includes('parked')) {
        if (transport === 'poll') console.log('parked', JSON.stringify(await parkedMemory(ctx, clients)));
        else console.log('connected', JSON.stringify(await connectedMemory(ctx, transport, clients)));
      }
      if (only.includes('fanoutfloor')) console.log('fanout floor', JSON.stringify(await fanoutFloor(clients)));
      if (only.includes('fanout')) console.log('fanout', JSON.stringify(await fanout(ctx, clients, transport)));
      if (only.includes('send')) {
        await sendOnly(ctx, 1.5, 200_000);
        const runs = [];
        for (let k = 0; k < 3; k++) runs.push((await sendOnly(ctx, seconds, 200_000)).cpuUsPerSend);
        console.log(`send-only µs/send: ${runs.join(' ')}`);
      }
      if (only.includes('targeted')) {
        await targeted(ctx, clients, 0, 1.5, 'warmup', transport);
        const runs = [];
        for (let k = 0; k < 3; k++) {
          const r = await targeted(ctx, clients, 0, seconds, `max${k}`, transport);
          runs.push(`${r.cpuUsPerDelivery} (${r.deliveriesPerSec}/s, ${r.messagesPerResponse}/answer${r.storeCallsPerDelivery !== undefined ? `, ${r.storeCallsPerDelivery} calls` : ''}${r.redisCpuUsPerDelivery !== undefined ? `, redis ${r.redisCpuUsPerDelivery}` : ''})`);
        }
        console.log(`targeted (${transport}) µs/delivery: ${runs.join(' ')}`);
      }
    });
    if (violations.list.length) console.log('VIOLATIONS', violations.list.slice(0, 10));
  } finally {
    await redis?.stop();
  }
  process.exit(0);
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
