import type { Command } from 'commander';
import { registerAgent } from './agent.js';
import { registerDoctor } from './doctor.js';
import { registerIngest } from './ingest.js';
import { registerPolicy } from './policy.js';
import { registerQuery } from './query.js';
import { registerSearch } from './search.js';
import { registerSetup } from './setup.js';
import { registerSimulate } from './simulate.js';
import { registerStatus } from './status.js';

/** Every `kaudit <noun> [verb]` command; each module adds its own. */
export function registerCommands(program: Command): void {
  registerIngest(program);
  registerSearch(program);
  registerQuery(program);
  registerSimulate(program);
  registerPolicy(program);
  registerAgent(program);
  registerStatus(program);
  registerSetup(program);
  registerDoctor(program);
}
