#!/usr/bin/env node
// The `kaudit` command. CommonJS on purpose: it runs before Node starts libuv's thread pool (an ES
// module entry is read through that pool), so it can still size the pool.
//
// The agent's DuckDB imports run on pool threads, and each thread that has run one keeps the memory
// of its largest import in its malloc arena. Two threads, one per store writer, measured ~130 MB
// less peak RSS than libuv's default four at the same throughput. Other commands keep the default.
'use strict';

if (process.argv[2] === 'agent' && process.env.UV_THREADPOOL_SIZE === undefined) {
  process.env.UV_THREADPOOL_SIZE = '2';
}
import('../dist/cli/bin.js').catch((err) => {
  const missing = err?.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist');
  process.stderr.write(
    missing
      ? 'kaudit: the CLI is not built (no dist/); run `npm run build` (npm ci does it) and try again\n'
      : `kaudit: internal error: ${err?.stack ?? err}\n`,
  );
  process.exitCode = missing ? 2 : 3;
});
