import { homedir } from 'node:os';
import { posix, win32 } from 'node:path';

export interface PlatformPaths {
  /** The agent's config file. */
  config: string;
  /** Checkpoints and agent.json. */
  runPath: string;
  /** The store. */
  data: string;
}

export interface PlatformInfo {
  platform: NodeJS.Platform;
  env: Record<string, string | undefined>;
  home: string;
  /** A system-wide agent (root on Unix, a service on Windows) rather than one user's. */
  system: boolean;
}

/**
 * Where the agent keeps its files on each platform, following the platform's conventions:
 * Linux the FHS (/etc, /var/lib) for a system agent and the XDG base directories for a user;
 * macOS /Library/Application Support and ~/Library/Application Support; Windows %ProgramData% for
 * a service and %LOCALAPPDATA% for a user. Paths are built with the platform's own path rules
 * (node:path posix or win32), so they are right whatever machine computes them.
 */
export function platformPaths(info: PlatformInfo): PlatformPaths {
  const { env, home } = info;
  const at = (
    p: typeof posix,
    base: string,
    sub: { config: string; run: string; data: string },
  ): PlatformPaths => ({
    config: p.join(base, sub.config),
    runPath: p.join(base, sub.run),
    data: p.join(base, sub.data),
  });
  const flat = { config: 'kaudit.yaml', run: 'run', data: 'data' };
  switch (info.platform) {
    case 'win32': {
      const base = info.system
        ? win32.join(env.ProgramData ?? 'C:\\ProgramData', 'kaudit')
        : win32.join(env.LOCALAPPDATA ?? win32.join(home, 'AppData', 'Local'), 'kaudit');
      return at(win32, base, flat);
    }
    case 'darwin': {
      const base = info.system
        ? '/Library/Application Support/kaudit'
        : posix.join(home, 'Library', 'Application Support', 'kaudit');
      return at(posix, base, flat);
    }
    default: {
      if (info.system) {
        return {
          config: '/etc/kaudit/kaudit.yaml',
          runPath: '/var/lib/kaudit/run',
          data: '/var/lib/kaudit/data',
        };
      }
      // XDG Base Directory Specification: relative values are invalid and ignored.
      const xdg = (name: string, fallback: string) => {
        const v = env[name];
        return v !== undefined && posix.isAbsolute(v) ? v : posix.join(home, fallback);
      };
      return {
        config: posix.join(xdg('XDG_CONFIG_HOME', '.config'), 'kaudit', 'kaudit.yaml'),
        runPath: posix.join(xdg('XDG_STATE_HOME', '.local/state'), 'kaudit', 'run'),
        data: posix.join(xdg('XDG_DATA_HOME', '.local/share'), 'kaudit', 'data'),
      };
    }
  }
}

/** This process's platform paths. */
export function currentPlatformPaths(): PlatformPaths {
  const system =
    process.platform === 'win32'
      ? (process.env.USERNAME ?? '').toUpperCase() === 'SYSTEM'
      : typeof process.getuid === 'function' && process.getuid() === 0;
  return platformPaths({
    platform: process.platform,
    env: process.env,
    home: homedir(),
    system,
  });
}
