/**
 * The browser client and the demo page from static/: flat files with a known type, read once
 * when the gateway is created (a handful of small files; no disk read per request, and the route
 * table knows every name, so the gateway never claims a host's paths).
 */
import { readdir, readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import type { Context } from 'koa';
import { setHeader } from './headers.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'application/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
};
const NAME = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,100}$/;

export interface StaticFile {
  /** Route path, relative to the mount: `/pollgate.js`, and `/` for index.html. */
  path: string;
  type: string;
  body: Buffer;
}

/** Every servable file of `dir`. */
export async function loadStaticFiles(dir: string): Promise<StaticFile[]> {
  const files: StaticFile[] = [];
  for (const name of (await readdir(dir)).sort()) {
    const type = TYPES[extname(name)];
    // static/package.json only tells Node the client is CommonJS (pollgate/client): not served.
    if (!type || !NAME.test(name) || name === 'package.json') continue;
    const body = await readFile(join(dir, name));
    files.push({ path: `/${name}`, type, body });
    if (name === 'index.html') files.push({ path: '/', type, body });
  }
  return files;
}

/** The route for one file (GET, and HEAD through koa-router). */
export function staticRoute(file: StaticFile) {
  return function serveStatic(ctx: Context): void {
    ctx.type = file.type;
    // Revalidated on every load: a deploy's new client must not wait for a cache to expire.
    setHeader(ctx, 'cache-control', 'no-cache');
    ctx.body = file.body;
  };
}
