/** Options of the bench scripts, given as `--name=value`; a flag is just `--name`. */
export function option(name: string, def: string, args: readonly string[] = process.argv.slice(2)): string {
  return args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? def;
}
