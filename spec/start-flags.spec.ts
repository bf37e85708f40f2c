/**
 * The node flags the standalone gateway runs with: `npm start` and the `pollgate` bin must agree,
 * and both must give V8 the 32 MB young generation (lib/cli.ts says why; docs/PERFORMANCE.md,
 * "The young generation", has the numbers). The bench measures every server with these flags.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { startScriptFlags } from '../bench/gateway.js';

const PACKAGE_JSON = readFileSync(fileURLToPath(new URL('../../package.json', import.meta.url)), 'utf8');
const CLI = fileURLToPath(new URL('../lib/cli.js', import.meta.url));

describe('node flags of the standalone gateway', () => {
  it('npm start runs node with a 32 MB young generation', () => {
    expect(startScriptFlags(PACKAGE_JSON)).to.include('--max-semi-space-size=32');
  });

  it('the pollgate bin runs node with the same flags as npm start', () => {
    const shebang = readFileSync(CLI, 'utf8').split('\n', 1)[0]!;
    // `env -S` splits the rest of the line into node and its flags (GNU coreutils 8.30+, BSD, macOS).
    expect(shebang.startsWith('#!/usr/bin/env -S node')).to.equal(true, shebang);
    expect(shebang.slice('#!/usr/bin/env -S node'.length).trim().split(/\s+/).filter(Boolean)).to.deep.equal(startScriptFlags(PACKAGE_JSON));
  });

  it('reads the flags between node and the script, and refuses a start script that is not node', () => {
    const pkg = (start: string) => JSON.stringify({ scripts: { start } });
    expect(startScriptFlags(pkg('node dist/lib/cli.js'))).to.deep.equal([]);
    expect(startScriptFlags(pkg('node --a=1  --b dist/lib/cli.js'))).to.deep.equal(['--a=1', '--b']);
    expect(() => startScriptFlags(pkg('tsx lib/cli.ts'))).to.throw(/does not run node/);
  });
});
