import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

/** Options of the bench scripts, given as `--name=value`; a flag is just `--name`. */
export function option(name: string, def: string, args: readonly string[] = process.argv.slice(2)): string {
  return args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? def;
}

/**
 * Whether the module at `moduleUrl` (its import.meta.url) is the script node was started with, not
 * one a spec imported. Compared by real path: Node names the main module by it, so a build reached
 * through a symlink runs too.
 */
export function isMainScript(moduleUrl: string, argv1: string | undefined = process.argv[1]): boolean {
  return argv1 !== undefined && moduleUrl === pathToFileURL(realpathSync(argv1)).href;
}

/**
 * Runs `main` when the module at `moduleUrl` is the script node was started with (a spec that
 * imports the module's parsers runs nothing); a failure is printed as `<name> failed: ...`, exit 1.
 */
export function runAsScript(moduleUrl: string, name: string, main: () => Promise<void>): void {
  if (!isMainScript(moduleUrl)) return;
  main().catch((err: Error) => {
    console.error(`${name} failed: ${err.stack ?? err.message}`);
    process.exit(1);
  });
}
