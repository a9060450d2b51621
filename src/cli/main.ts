import { Command, CommanderError } from 'commander';
import { UserError } from '../model/errors.js';
import { registerCommands } from './commands/index.js';
import { VERSION } from './version.js';

/** Exit codes (STYLE.md): 0 ok, 1 findings, 2 usage/config/input error, 3 runtime failure. */
export const EXIT_FINDINGS = 1;
export const EXIT_USAGE = 2;
export const EXIT_RUNTIME = 3;

let exitCode = 0;

/**
 * A command's outcome other than success (lint findings, a failing status check): the process
 * exits with the highest status asked for. Only this module ends the process.
 */
export function setExitCode(code: number): void {
  exitCode = Math.max(exitCode, code);
}

/** Ends the process at once, without draining (a second SIGTERM). */
export function exitNow(code: number): never {
  process.exit(code);
}

export function buildProgram(): Command {
  const program = new Command('kaudit')
    .description('Collect, search and analyse Kubernetes API-server audit logs')
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerCommands(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  exitCode = 0;
  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version arrive here as well, with exit code 0.
      return err.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    if (err instanceof UserError) {
      process.stderr.write(`kaudit: error[${err.code}]: ${err.message}\n`);
      if (err.hint) process.stderr.write(`  hint: ${err.hint}\n`);
      return EXIT_USAGE;
    }
    const e = err instanceof Error ? err : new Error(String(err));
    process.stderr.write(`kaudit: internal error: ${e.stack ?? e.message}\n`);
    return EXIT_RUNTIME;
  }
}

/** The executable's entry (bin.ts): runs the command and sets the process's exit status. */
export function run(argv: string[] = process.argv.slice(2)): void {
  // `kaudit search | head`: once the reader has gone there is nobody left to tell; stop quietly, as
  // Unix tools do, rather than dying on EPIPE with a stack trace.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  main(argv).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`kaudit: internal error: ${String(err)}\n`);
      process.exitCode = EXIT_RUNTIME;
    },
  );
}
