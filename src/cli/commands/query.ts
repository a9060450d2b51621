import type { Command } from 'commander';

// Placeholder until the command lands; its owner replaces this file.
export function registerQuery(_program: Command): void {}
