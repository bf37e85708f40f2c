// The authorize hook's cost per poll (docs/PERFORMANCE.md, "Server hooks"): no hook, an allow cached, an HTTP hook asked every time.
// Run after a build: node scripts/hook-cost.mjs (about a minute).
import { createServer } from 'node:http';
import { performance } from 'node:perf_hooks';
import { Hooks } from '../dist/lib/hooks.js';
import { startGateway } from '../dist/spec/support/gateway.js';

const hook = createServer((req, res) => { req.resume(); req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"allow":true}')); });
await new Promise((r) => hook.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${hook.address().port}/`;
const N = 3000;
async function run(label, hooks) {
  const gw = await startGateway({ hooks, rateLimits: { pollsPerIpPerSecond: 0 } });
  const token = await gw.token({ sub: 'm', streams: ['*'] });
  const go = () => fetch(`${gw.url}/poll?streams=a,b,c&timeout=0`, { headers: { Authorization: `Bearer ${token}` } }).then((r) => r.arrayBuffer());
  for (let i = 0; i < 300; i++) await go();
  const t = performance.now();
  for (let i = 0; i < N; i++) await go();
  const us = ((performance.now() - t) / N) * 1000;
  console.log(label, us.toFixed(1), 'us per poll (3 streams), hook calls', gw.hooks.calls);
  await gw.shutdown();
  return us;
}
const rounds = [];
for (let r = 0; r < 2; r++) {
  rounds.push([await run('no hook      ', {}), await run('cached allow ', { url, allowCacheSeconds: 60 }), await run('asked always ', { url, allowCacheSeconds: 0 })]);
}
// The cached path alone.
const h = new Hooks({ authorize: () => true }, { url: '', timeoutMs: 1000, failOpen: false, allowCacheSeconds: 60 }, { warn() {} });
const p = { kind: 'client', subject: 'm', expiresAtMs: Infinity, canRead: () => true, canWrite: () => true };
await h.assertAllowed(p, ['a', 'b', 'c'], 'read', 'poll');
const M = 200000;
const t = performance.now();
for (let i = 0; i < M; i++) await h.assertAllowed(p, ['a', 'b', 'c'], 'read', 'poll');
console.log('assertAllowed cached, 3 streams:', (((performance.now() - t) / M) * 1e6).toFixed(0), 'ns');
hook.close();
