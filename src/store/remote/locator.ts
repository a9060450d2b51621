import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** What `<data>/agent.json` and `<run_path>/agent.json` hold, so other commands find the running agent. */
export interface AgentLocator {
  pid: number;
  admin: string;
  dataDir: string;
  runPath: string;
  startedAt: string;
  version: string;
  /** Bearer token of the agent's API; the file is written readable by the agent's user only. */
  token: string;
}

export const AGENT_FILE = 'agent.json';

/** The agent that announced itself in `<dir>/agent.json`, if that file is one. */
export async function readAgentLocator(dir: string): Promise<AgentLocator | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, AGENT_FILE), 'utf8');
  } catch {
    return undefined;
  }
  try {
    const locator = JSON.parse(text) as AgentLocator;
    if (
      typeof locator.admin !== 'string' ||
      typeof locator.pid !== 'number' ||
      typeof locator.token !== 'string'
    )
      return undefined;
    return locator;
  } catch {
    return undefined;
  }
}
