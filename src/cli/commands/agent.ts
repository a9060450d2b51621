import type { Command } from 'commander';

// Placeholder until the command lands; its owner replaces this file.
export function registerAgent(_program: Command): void {}
