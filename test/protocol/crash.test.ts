import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { AgentSyncProtocol, Mode } from '../../src/index.js';
import { MockManager } from '../../src/testing/index.js';
import { dbFile } from '../helpers.js';

const child = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'sync-child.ts');

/** Run the child until it prints `line`, then SIGKILL it. */
function killAfter(args: string[], line: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', child, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    proc.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.split('\n').includes(line)) proc.kill('SIGKILL');
    });
    proc.stderr.on('data', (chunk: Buffer) => {
      err += chunk.toString();
    });
    proc.on('exit', (_code, signal) => {
      if (signal === 'SIGKILL' && !out.includes('finished')) resolve();
      else
        reject(
          new Error(
            `child was not killed mid-sync (signal ${signal}); stdout: ${out} stderr: ${err}`,
          ),
        );
    });
  });
}

describe('a process killed with SIGKILL mid-sync loses nothing', () => {
  it.each(['data', 'wait-endack', 'reqret'])(
    'killed during %s: a new process sends every item in its final state',
    async (phase) => {
      const path = dbFile();
      await killAfter([path, '300', phase], 'syncing');

      const manager = new MockManager();
      const agent = new AgentSyncProtocol({
        moduleName: 'fim',
        dbPath: path,
        transport: manager.transport('fim'),
      });
      expect(agent.pendingCount).toBe(300);
      expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true, sent: 300 });
      const docs = manager.documents();
      expect(docs.map((d) => d.itemId).sort()).toEqual(
        Array.from({ length: 300 }, (_, i) => `f${i}`).sort(),
      );
      expect(docs.find((d) => d.itemId === 'f0')?.data).toEqual({ n: 0, v: 2 });
      await agent.close();
      await manager.close();
    },
  );
});
