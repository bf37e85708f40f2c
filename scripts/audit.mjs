#!/usr/bin/env node
// CI supply-chain gate: reads `npm audit --json` on stdin. Exits 1 when a production dependency
// has a high or critical advisory; warns (exit 0) when the audit itself could not be done, e.g.
// the registry's audit endpoint is unreachable, so an outage there does not block every change.
import { readFileSync } from 'node:fs';

const text = readFileSync(0, 'utf8');
let report;
try {
  report = JSON.parse(text);
} catch {
  report = undefined;
}
const counts = report?.metadata?.vulnerabilities;
if (!counts) {
  const reason = report?.message ?? report?.error?.summary ?? (text.trim().slice(0, 200) || 'no output');
  console.log(`audit: WARNING: npm audit could not run (${reason}); dependencies were not checked`);
  process.exit(0);
}
const blocking = (counts.high ?? 0) + (counts.critical ?? 0);
const names = Object.entries(report.vulnerabilities ?? {})
  .filter(([, v]) => v.severity === 'high' || v.severity === 'critical')
  .map(([name, v]) => `${name} (${v.severity})`);
if (blocking > 0) {
  console.log(`audit: FAILED: ${blocking} high/critical advisories in production dependencies: ${names.join(', ')}`);
  process.exit(1);
}
console.log(`audit: ok (no high or critical advisories; ${counts.moderate ?? 0} moderate, ${counts.low ?? 0} low)`);
