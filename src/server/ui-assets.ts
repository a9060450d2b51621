import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

interface Asset {
  body: Buffer;
  gzipped: Buffer;
  type: string;
}

/** The built dashboard (npm run build puts it in dist/ui): beside the compiled server, or the repo's dist when run from source. */
function uiDir(): string | undefined {
  for (const dir of [
    fileURLToPath(new URL('../ui/', import.meta.url)),
    fileURLToPath(new URL('../../dist/ui/', import.meta.url)),
  ])
    if (existsSync(join(dir, 'index.html'))) return dir;
  return undefined;
}

/**
 * The dashboard's files, read once into memory (a few hundred KB) and served from there: no path
 * from a request ever reaches the file system.
 */
export function loadUiAssets(): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  const dir = uiDir();
  if (dir === undefined) return assets;
  const add = (urlPath: string, file: string) => {
    const body = readFileSync(file);
    assets.set(urlPath, {
      body,
      gzipped: gzipSync(body),
      type: TYPES[extname(file)] ?? 'application/octet-stream',
    });
  };
  add('/', join(dir, 'index.html'));
  for (const name of readdirSync(join(dir, 'assets'))) add(`/assets/${name}`, join(dir, 'assets', name));
  return assets;
}

export function assetResponse(asset: Asset, acceptEncoding: string | undefined): Response {
  const gzip = /\bgzip\b/.test(acceptEncoding ?? '');
  return new Response(gzip ? asset.gzipped : asset.body, {
    headers: {
      'content-type': asset.type,
      'cache-control': 'no-cache',
      ...(gzip ? { 'content-encoding': 'gzip' } : {}),
      // The dashboard loads nothing from elsewhere.
      'content-security-policy':
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'",
      'x-content-type-options': 'nosniff',
    },
  });
}
