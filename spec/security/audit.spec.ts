/**
 * The CI supply-chain gate (scripts/audit.mjs, run by .ci/run on `npm audit --omit=dev --json`):
 * fails on high/critical advisories, passes on lesser ones, warns when the audit could not run.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SCRIPT = `${ROOT}scripts/audit.mjs`;

function gate(input: unknown): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [SCRIPT], { input: typeof input === 'string' ? input : JSON.stringify(input), encoding: 'utf8' });
  return { status: r.status, out: r.stdout + r.stderr };
}

const vulns = (counts: Record<string, number>, vulnerabilities: Record<string, { severity: string }> = {}) => ({
  auditReportVersion: 2,
  vulnerabilities,
  metadata: { vulnerabilities: { info: 0, low: 0, moderate: 0, high: 0, critical: 0, total: 0, ...counts } },
});

describe('CI dependency audit gate', function () {
  it('fails on a high or a critical advisory, naming the package', function () {
    const high = gate(vulns({ high: 1, total: 1 }, { ws: { severity: 'high' } }));
    expect(high.status).to.equal(1);
    expect(high.out).to.include('ws (high)');
    expect(gate(vulns({ critical: 2, total: 2 })).status).to.equal(1);
  });

  it('passes with only low and moderate advisories, or none', function () {
    expect(gate(vulns({ low: 3, moderate: 1, total: 4 })).status).to.equal(0);
    expect(gate(vulns({})).status).to.equal(0);
  });

  it('warns but passes when the audit endpoint could not be reached', function () {
    const r = gate({ message: '405 Method Not Allowed - POST https://registry/-/npm/v1/security/advisories/bulk', error: { summary: '' } });
    expect(r.status).to.equal(0);
    expect(r.out).to.match(/WARNING.*could not run.*405/);
    expect(gate('').status).to.equal(0);
  });

  it('keeps ws at 8.17.1 or later (CVE-2024-37890: too many headers crashed the server), in package.json and installed', function () {
    const atLeast = (version: string) => {
      const [major, minor, patch] = version.replace(/^[^\d]*/, '').split('.').map(Number) as [number, number, number];
      return major > 8 || (major === 8 && (minor > 17 || (minor === 17 && patch >= 1)));
    };
    const declared = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')).dependencies.ws as string;
    expect(declared, declared).to.match(/^\^8\./);
    expect(atLeast(declared), declared).to.equal(true);
    const installed = JSON.parse(readFileSync(`${ROOT}node_modules/ws/package.json`, 'utf8')).version as string;
    expect(atLeast(installed), installed).to.equal(true);
  });

  it('runs in .ci/run on production dependencies', function () {
    expect(readFileSync(`${ROOT}.ci/run`, 'utf8')).to.match(/npm audit --omit=dev --json[^\n]*\| node scripts\/audit\.mjs/);
  });
});
