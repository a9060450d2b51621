import { posix, win32 } from 'node:path';
import { describe, expect, it } from 'vitest';
import { platformPaths } from './platform-paths.js';

describe('platformPaths', () => {
  it('Linux: FHS for a system agent', () => {
    expect(platformPaths({ platform: 'linux', env: {}, home: '/root', system: true })).toEqual({
      config: '/etc/kaudit/kaudit.yaml',
      runPath: '/var/lib/kaudit/run',
      data: '/var/lib/kaudit/data',
    });
  });

  it('Linux: XDG base directories for a user, ignoring relative values as the spec says', () => {
    expect(platformPaths({ platform: 'linux', env: {}, home: '/home/ann', system: false })).toEqual({
      config: '/home/ann/.config/kaudit/kaudit.yaml',
      runPath: '/home/ann/.local/state/kaudit/run',
      data: '/home/ann/.local/share/kaudit/data',
    });
    const env = { XDG_CONFIG_HOME: '/cfg', XDG_STATE_HOME: 'relative', XDG_DATA_HOME: '/d' };
    expect(platformPaths({ platform: 'linux', env, home: '/home/ann', system: false })).toEqual({
      config: '/cfg/kaudit/kaudit.yaml',
      runPath: '/home/ann/.local/state/kaudit/run',
      data: '/d/kaudit/data',
    });
  });

  it('macOS: Application Support, system-wide or in the home directory', () => {
    expect(platformPaths({ platform: 'darwin', env: {}, home: '/Users/ann', system: true }).data).toBe(
      '/Library/Application Support/kaudit/data',
    );
    const user = platformPaths({ platform: 'darwin', env: {}, home: '/Users/ann', system: false });
    expect(user.config).toBe('/Users/ann/Library/Application Support/kaudit/kaudit.yaml');
    expect(posix.isAbsolute(user.runPath)).toBe(true);
  });

  it('Windows: %ProgramData% for a service, %LOCALAPPDATA% for a user, with win32 paths', () => {
    const service = platformPaths({
      platform: 'win32',
      env: { ProgramData: 'D:\\ProgramData' },
      home: 'C:\\Users\\ann',
      system: true,
    });
    expect(service).toEqual({
      config: 'D:\\ProgramData\\kaudit\\kaudit.yaml',
      runPath: 'D:\\ProgramData\\kaudit\\run',
      data: 'D:\\ProgramData\\kaudit\\data',
    });
    const user = platformPaths({ platform: 'win32', env: {}, home: 'C:\\Users\\ann', system: false });
    expect(user.data).toBe('C:\\Users\\ann\\AppData\\Local\\kaudit\\data');
    expect(win32.isAbsolute(user.config)).toBe(true);
    expect(platformPaths({ platform: 'win32', env: {}, home: 'C:\\Users\\ann', system: true }).runPath).toBe(
      'C:\\ProgramData\\kaudit\\run',
    );
  });
});
