/**
 * Serves the browser client and the demo page from static/ (GET and HEAD only, flat names only).
 */
import { readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import type { Context, Next } from 'koa';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'application/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
};
const NAME = /^\/([A-Za-z0-9_-][A-Za-z0-9_.-]{0,100})$/;

export function staticFiles(dir: string) {
  return async function serveStatic(ctx: Context, next: Next): Promise<void> {
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return next();
    const path = ctx.path === '/' ? '/index.html' : ctx.path;
    const match = NAME.exec(path);
    const type = match ? TYPES[extname(match[1]!)] : undefined;
    if (!match || !type || match[1]!.includes('..')) return next();
    let body: Buffer;
    try {
      body = await readFile(join(dir, match[1]!));
    } catch {
      return next();
    }
    ctx.type = type;
    ctx.set('Cache-Control', 'no-cache');
    ctx.body = body;
  };
}
