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

  it('the pollgate bin starts through a plain `env node`, which BusyBox (Alpine) runs too', () => {
    // Flags on a shebang need `env -S`, which BusyBox's env refuses: the bin would not start at all.
    // The bin gets the flags from NODE_OPTIONS (README, "Operations").
    expect(readFileSync(CLI, 'utf8').split('\n', 1)[0]).to.equal('#!/usr/bin/env node');
  });

  it('reads the flags between node and the script, and refuses a start script that is not node', () => {
    const pkg = (start: string) => JSON.stringify({ scripts: { start } });
    expect(startScriptFlags(pkg('node dist/lib/cli.js'))).to.deep.equal([]);
    expect(startScriptFlags(pkg('node --a=1  --b dist/lib/cli.js'))).to.deep.equal(['--a=1', '--b']);
    expect(() => startScriptFlags(pkg('tsx lib/cli.ts'))).to.throw(/does not run node/);
  });
});
