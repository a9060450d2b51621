import type { Command } from 'commander';
import { registerAgent } from './agent.js';
import { registerAlerts } from './alerts.js';
import { registerDetect } from './detect.js';
import { registerDoctor } from './doctor.js';
import { registerForward } from './forward.js';
import { registerHistory } from './history.js';
import { registerIngest } from './ingest.js';
import { registerPolicy } from './policy.js';
import { registerQuery } from './query.js';
import { registerRbacCan } from './rbac-can.js';
import { registerRbacGenerate } from './rbac-generate.js';
import { registerRbacReview } from './rbac-review.js';
import { registerReport } from './report.js';
import { registerReportDenials } from './report-denials.js';
import { registerRules } from './rules.js';
import { registerSearch } from './search.js';
import { registerServe } from './serve.js';
import { registerSetup } from './setup.js';
import { registerSimulate } from './simulate.js';
import { registerStatus } from './status.js';
import { registerStoreInfo } from './store-info.js';
import { addStoreOption, registerStoreInit } from './store-init.js';

/** Every `kaudit <noun> [verb]` command; each module adds its own. */
export function registerCommands(program: Command): void {
  registerIngest(program);
  registerSearch(program);
  registerQuery(program);
  registerSimulate(program);
  registerPolicy(program);
  registerAgent(program);
  registerStatus(program);
  registerReport(program);
  registerReportDenials(program);
  registerHistory(program);
  registerRbacCan(program);
  registerRbacGenerate(program);
  registerRbacReview(program);
  registerServe(program);
  registerAlerts(program);
  registerDetect(program);
  registerRules(program);
  registerForward(program);
  registerStoreInfo(program);
  registerSetup(program);
  registerDoctor(program);
  registerStoreInit(program);
  // Last: every command with --data, from every module above, also takes --store.
  addStoreOption(program);
}
