import type { Command } from 'commander';

// Placeholder until the command lands; its owner replaces this file.
export function registerStatus(_program: Command): void {}
