import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import type { AgentInfo } from '../interfaces/agent-info.js';

function readOsRelease(): Record<string, string> {
  try {
    const fields: Record<string, string> = {};
    for (const line of readFileSync('/etc/os-release', 'utf8').split('\n')) {
      const match = /^([A-Z_]+)=(.*)$/.exec(line);
      if (match) fields[match[1] as string] = (match[2] as string).replace(/^"(.*)"$/, '$1');
    }
    return fields;
  } catch {
    return {};
  }
}

function readMachineId(): string | undefined {
  try {
    const id = readFileSync('/etc/machine-id', 'utf8').trim();
    return id === '' ? undefined : id;
  } catch {
    return undefined;
  }
}

/** This package's version, from the same package.json in src/ and dist/ layouts. */
export const PACKAGE_VERSION: string = (
  createRequire(import.meta.url)('../../package.json') as { version: string }
).version;

let cached: AgentInfo | undefined;

/**
 * The host's own facts, used for every AgentInfo field the caller did not
 * set. Never placeholders: `id` is `/etc/machine-id` (else the hostname),
 * `osName` and `osVersion` come from `/etc/os-release` (else `node:os`),
 * `version` is this package's. Read once per process; later calls return the
 * same object, which must not be modified.
 *
 * @example
 * ```ts
 * const { hostname, osName } = hostAgentInfo();
 * ```
 */
export function hostAgentInfo(): AgentInfo {
  if (cached) return cached;
  const release = readOsRelease();
  const hostname = os.hostname();
  cached = {
    id: readMachineId() ?? hostname,
    name: hostname,
    version: PACKAGE_VERSION,
    hostname,
    architecture: os.machine(),
    osName: release.NAME ?? os.type(),
    osType: os.platform(),
    osPlatform: release.ID ?? os.platform(),
    osVersion: release.VERSION_ID ?? os.release(),
    groups: [],
  };
  return cached;
}
