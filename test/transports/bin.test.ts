import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentSyncProtocol, Mode, Operation, TcpTransport } from '../../src/index.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = join(root, 'src', 'bin', 'mock-manager.ts');

const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
});

function run(args: string[]): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', bin, ...args], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  return child;
}

async function firstLine(child: ChildProcess): Promise<string> {
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const [line] = (await once(lines, 'line')) as [string];
  lines.close();
  return line;
}

describe('agent-sync-mock-manager', () => {
  it('prints its ports, serves agents and HTTP, and exits 0 on SIGTERM', async () => {
    const child = run(['--port', '0', '--http-port', '0', '--session-timeout-ms', '5000']);
    const ports = JSON.parse(await firstLine(child)) as { port: number; httpPort: number };
    expect(ports.port).toBeGreaterThan(0);
    expect(ports.httpPort).toBeGreaterThan(0);

    const health = await fetch(`http://127.0.0.1:${ports.httpPort}/health`);
    expect(await health.json()).toEqual({ status: 'ok' });

    const transport = new TcpTransport({ port: ports.port });
    const sync = new AgentSyncProtocol({
      moduleName: 'sca',
      dbPath: ':memory:',
      transport,
      agentInfo: { id: '010' },
    });
    sync.persistDifference('check1', Operation.Create, 'sca', JSON.stringify({ result: 'passed' }));
    expect((await sync.synchronizeModule(Mode.Delta, { timeoutMs: 5000 })).ok).toBe(true);
    await sync.close();
    await transport.close();
    const docs = await (
      await fetch(`http://127.0.0.1:${ports.httpPort}/documents?index=sca`)
    ).json();
    expect(docs).toMatchObject([{ id: '010_check1', data: { result: 'passed' } }]);

    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const [code, signal] = (await exited) as [number | null, string | null];
    expect({ code, signal }).toEqual({ code: 0, signal: null });
  });

  it('exits 0 on SIGINT with an agent still connected', async () => {
    const child = run([]);
    const { port } = JSON.parse(await firstLine(child)) as { port: number };
    const transport = new TcpTransport({ port });
    await transport.start();
    const exited = once(child, 'exit');
    child.kill('SIGINT');
    expect(await exited).toEqual([0, null]);
    await transport.close();
  });

  it('rejects a bad option with exit code 2 and the usage', async () => {
    const child = run(['--port', 'eighty']);
    let err = '';
    child.stderr?.on('data', (chunk) => {
      err += chunk;
    });
    const [code] = (await once(child, 'exit')) as [number];
    expect(code).toBe(2);
    expect(err).toContain('--port must be an integer');
    expect(err).toContain('Usage: agent-sync-mock-manager');
  });
});
