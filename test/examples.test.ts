import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const run = (file: string, ...args: string[]) =>
  promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', join(root, 'examples', file), ...args],
    { cwd: root },
  );

describe('examples run as documented', () => {
  it("integration guide: the checksum of the module's documents matches, and a Full sync restores an emptied index", async () => {
    const { stdout } = await run('integration-guide.ts');
    expect(stdout).toContain('delta: 3 sent');
    expect(stdout).toContain('after the check: manager holds 3, checksum matches yes');
    expect(stdout).toContain('manager index rebuilt empty: checksum matches no');
    expect(stdout).toContain('after recovery: manager holds 3, checksum matches yes');
  });

  it('demo: syncs with a retransmission and the checksum matches', async () => {
    const { stdout } = await run('demo.ts');
    expect(stdout).toMatch(/retransmitted \(ReqRet\)\s+[1-9]\d*/);
    expect(stdout).toMatch(/checksum matched\s+yes/);
    const [, held, expected] =
      /documents on manager\s+(\d+)\s+\(expected (\d+)\)/.exec(stdout) ?? [];
    expect(held).toBe(expected);
  });

  it('demo --wire fullSession: byte-cut sessions over several Deltas, a 503 retried, the checksum matches', async () => {
    const { stdout } = await run('demo.ts', '--wire', 'fullSession');
    expect(stdout).toContain('(fullSession wire)');
    const [, sessions, calls, again] =
      /7500 items sent in (\d+) sessions over (\d+) Delta calls, (\d+) sent again after a 503/.exec(
        stdout,
      ) ?? [];
    expect(Number(sessions)).toBeGreaterThan(10);
    expect(Number(calls)).toBeGreaterThan(1);
    expect(again).toBe('1');
    expect(stdout).toMatch(/retried after 503\s+1\b/);
    expect(stdout).toMatch(/checksum matched\s+yes/);
    const [, held, expected] =
      /documents on manager\s+(\d+)\s+\(expected (\d+)\)/.exec(stdout) ?? [];
    expect(held).toBe(expected);
  });

  it("README's Wazuh 5.0 set-ups: straight to a signing manager, and beside an agent daemon", async () => {
    const { stdout } = await run('readme-wazuh-5.ts');
    expect(stdout).toContain('straight to the manager: 1 sent');
    expect(stdout).toContain('beside the agent: 1 sent');
    expect(stdout).toContain('manager holds: wazuh_001_curl, wazuh_001_vim');
  });

  it('FIM module: changes made while the manager is offline arrive later, coalesced', async () => {
    const { stdout } = await run('fim-module.ts');
    expect(stdout).toContain('sync failed (manager-offline); 2 changes stay queued');
    expect(stdout).toContain('manager holds: /etc/hosts, /etc/passwd');
  });

  it('SCA module: a checksum mismatch leads to a Full sync that restores the manager', async () => {
    const { stdout } = await run('sca-module.ts');
    expect(stdout).toContain('integrity: mismatch, running a Full sync');
    expect(stdout).toContain('manager holds 3 results');
  });
});
