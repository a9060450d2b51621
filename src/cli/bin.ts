#!/usr/bin/env node
import { EXIT_RUNTIME, main } from './main.js';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`kaudit: internal error: ${String(err)}\n`);
    process.exitCode = EXIT_RUNTIME;
  },
);
