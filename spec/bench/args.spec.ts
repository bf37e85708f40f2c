import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { isMainScript } from '../../bench/args.js';

describe('bench/args isMainScript', function () {
  const self = fileURLToPath(import.meta.url);

  it('is true for the script node was started with, also through a symlink to it', function () {
    const dir = mkdtempSync(join(tmpdir(), 'pollgate-main-'));
    try {
      const link = join(dir, 'linked.js');
      symlinkSync(self, link);
      expect(isMainScript(import.meta.url, self)).to.equal(true);
      expect(isMainScript(import.meta.url, link)).to.equal(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is false for a module a spec imported', function () {
    expect(isMainScript(new URL('./profile.spec.js', import.meta.url).href, self)).to.equal(false);
  });
});
