// Builds the dashboard (src/server/ui) into dist/ui: one JS bundle, one stylesheet, index.html.
// Every asset is served by kaudit itself: no CDN, works offline.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { build } from 'esbuild';

const root = join(dirname(new URL(import.meta.url).pathname), '..');
const src = join(root, 'src/server/ui');
const out = join(root, 'dist/ui');
mkdirSync(join(out, 'assets'), { recursive: true });

await build({
  entryPoints: [join(src, 'main.tsx')],
  bundle: true,
  format: 'esm',
  minify: true,
  sourcemap: false,
  target: ['chrome110', 'firefox110', 'safari16'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  outfile: join(out, 'assets/app.js'),
  legalComments: 'eof',
  logLevel: 'warning',
});

const require = createRequire(import.meta.url);
const uplotCss = readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8');
writeFileSync(join(out, 'assets/app.css'), `${uplotCss}\n${readFileSync(join(src, 'style.css'), 'utf8')}`);
copyFileSync(join(src, 'index.html'), join(out, 'index.html'));
