import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentSyncProtocol, Mode, Operation, TcpTransport } from '../../src/index.js';
import { Option } from '../../src/wire-5/index.js';
import {
  delta,
  json,
  PACKAGES,
  send,
  signedHeaders,
  stateful,
} from '../testing/stateful-http-support.js';
import { ROOT, spawnMockCli } from './mock-cli.js';

const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
});

function run(args: string[]): ChildProcess {
  const child = spawnMockCli(args);
  children.push(child);
  return child;
}

async function firstLine(child: ChildProcess): Promise<string> {
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const [line] = (await once(lines, 'line')) as [string];
  lines.close();
  return line;
}

/** Run the command with `args` until it exits: its exit code and everything on stderr. */
async function failure(args: string[]): Promise<{ code: number; err: string }> {
  const child = run(args);
  let err = '';
  child.stderr?.on('data', (chunk) => {
    err += chunk;
  });
  const [code] = (await once(child, 'exit')) as [number];
  return { code, err };
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

  it('applies its fault and fidelity flags, and serves POST /faults and POST /reset', async () => {
    const child = run([
      '--seed',
      '42',
      '--empty-sessions',
      'refuse',
      '--end-ack-delay-ms',
      '80',
      '--workers',
      '2',
      '--fault',
      '{"type":"DataValue","seq":1,"action":"drop"}',
      '--drop-probability',
      '0',
    ]);
    const ports = JSON.parse(await firstLine(child)) as { port: number; httpPort: number };
    expect(ports).toMatchObject({ seed: 42 });
    const http = (method: string, path: string, body?: string) =>
      fetch(`http://127.0.0.1:${ports.httpPort}${path}`, { method, body }).then(async (r) => ({
        status: r.status,
        body: (await r.json()) as Record<string, unknown>,
      }));

    const transport = new TcpTransport({ port: ports.port });
    const sync = new AgentSyncProtocol({
      moduleName: 'sca',
      dbPath: ':memory:',
      transport,
      agentInfo: { id: '010' },
      syncDefaults: { timeoutMs: 3000, retries: 1 },
    });
    for (const id of ['c1', 'c2', 'c3']) {
      sync.persistDifference(id, Operation.Create, 'sca', JSON.stringify({ id, result: 'passed' }));
    }
    const started = Date.now();
    // --fault: seq 1 is lost once and sent again (--workers may ask for more); --end-ack-delay-ms:
    // the EndAck waits.
    const first = await sync.synchronizeModule(Mode.Delta);
    expect(first).toMatchObject({ ok: true });
    expect(first.ok && first.retransmitted).toBeGreaterThanOrEqual(1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(75);
    // --empty-sessions refuse: a Check is refused by the manager, not a proven mismatch.
    expect(await sync.checkIntegrity('sca', 'f00d')).toMatchObject({
      outcome: 'inconclusive',
      reason: 'manager-error',
    });

    // Over HTTP: a rule that loses every End makes the next sync time out; a reset undoes it.
    const rule = JSON.stringify({ type: 'End', action: 'drop', times: 'Infinity' });
    expect((await http('POST', '/faults', rule)).status).toBe(201);
    expect((await http('POST', '/faults', '{"action":"vanish"}')).status).toBe(400);
    sync.persistDifference('c4', Operation.Create, 'sca', JSON.stringify({ id: 'c4' }));
    expect(await sync.synchronizeModule(Mode.Delta, { timeoutMs: 150 })).toMatchObject({
      ok: false,
      reason: 'timeout',
    });
    expect(await http('POST', '/reset')).toEqual({ status: 200, body: { status: 'ok' } });
    expect((await http('GET', '/documents')).body).toEqual([]);
    expect(await sync.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true, sent: 1 });
    expect((await http('GET', '/stats')).body).toMatchObject({ sessionsCompleted: 1 });
    await sync.close();
    await transport.close();
    child.kill('SIGTERM');
    expect(await once(child, 'exit')).toEqual([0, null]);
  });

  it('serves POST /stateful on --stateful-socket and TCP with its 5.0 flags', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mmbin-'));
    const path = join(dir, 'inventory-sync.sock');
    try {
      const child = run([
        '--stateful-socket',
        path,
        '--cluster-name',
        'cluster01',
        '--max-inflight-bytes',
        String(2 * 1024 * 1024),
        '--vd-feed-offset',
        '5',
        '--indexer-down',
        '--stateful-fault',
        '{"action":"unavailable","retryAfterSeconds":3}',
      ]);
      const ready = JSON.parse(await firstLine(child)) as { httpPort: number };
      expect(ready).toMatchObject({ statefulSocketPath: path });
      const unix = { socketPath: path };
      const tcp = { port: ready.httpPort };
      const data = delta('curl', { clusterName: 'cluster01' });
      // --stateful-fault first, then --indexer-down: both 503, only the fault's has Retry-After.
      const faulted = await stateful(unix, data);
      expect(faulted).toMatchObject({ status: 503 });
      expect(faulted.headers['retry-after']).toBe('3');
      const down = await stateful(unix, data);
      expect(down).toMatchObject({ status: 503 });
      expect(down.headers['retry-after']).toBeUndefined();
      expect(await json(tcp, 'POST', '/reset')).toEqual({ status: 200, body: { status: 'ok' } });

      expect(await stateful(unix, data)).toMatchObject({ status: 200, body: '{"status":"ok"}' });
      expect(await stateful(tcp, delta('vim'))).toMatchObject({ status: 403 });
      const vd = delta('openssl', {
        clusterName: 'cluster01',
        option: Option.VDSync,
        feedOffset: 4n,
      });
      expect(await stateful(tcp, vd)).toMatchObject({
        status: 409,
        body: '{"current_version":5,"error":"version_mismatch"}',
      });
      const declared = await send(tcp, {
        headers: { 'x-wazuh-agent-id': '001' },
        declareOnly: 2 * 1024 * 1024,
      });
      expect(declared.status).toBe(413);
      expect((await json(tcp, 'GET', `/documents?index=${PACKAGES}`)).body).toMatchObject([
        { id: 'cluster01_001_curl', data: { wazuh: { cluster: { name: 'cluster01' } } } },
      ]);
      // Counted since the reset; the 413 never reached the manager.
      expect((await json(unix, 'GET', '/stats')).body).toMatchObject({
        statefulStats: { requests: 3, answered: { 200: 1, 403: 1, 409: 1 } },
      });

      child.kill('SIGTERM');
      expect(await once(child, 'exit')).toEqual([0, null]);
      expect(existsSync(path)).toBe(false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('--agent-keys-file and --agent-key: /stateful takes only signed requests', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mmbin-'));
    try {
      const keysFile = join(dir, 'client.keys');
      const key1 = 'ab'.repeat(32);
      const key2 = 'cd'.repeat(32);
      await writeFile(
        keysFile,
        `# comment\n001 web any ${'00'.repeat(32)}\n002 db any ${key2}\n003 !gone any ${key1}\n`,
      );
      // --agent-key 1=... replaces the file's 001.
      const child = run(['--agent-keys-file', keysFile, '--agent-key', `1=${key1}`]);
      const tcp = { port: (JSON.parse(await firstLine(child)) as { httpPort: number }).httpPort };
      const signed = (agentId: string, key: string, payload: Uint8Array) =>
        signedHeaders(payload, agentId, key);
      const data = delta('curl');
      expect(await send(tcp, { headers: signed('001', key1, data), body: data })).toMatchObject({
        status: 200,
      });
      const refused = { status: 401, body: '{"error":"Invalid client authentication","code":401}' };
      expect(await stateful(tcp, data)).toMatchObject({ status: 400 }); // no protocol-version
      expect(await stateful(tcp, data, '001', { 'protocol-version': '1' })).toMatchObject(refused);
      expect(
        await send(tcp, { headers: signed('001', '00'.repeat(32), data), body: data }),
      ).toMatchObject(refused);
      expect(await send(tcp, { headers: signed('003', key1, data), body: data })).toMatchObject(
        refused,
      );
      // Agent 002 signs for itself; the session names agent 001.
      expect(await send(tcp, { headers: signed('002', key2, data), body: data })).toMatchObject({
        status: 403,
      });
      child.kill('SIGTERM');
      expect(await once(child, 'exit')).toEqual([0, null]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('exits 1 when --agent-keys-file cannot be read', async () => {
    const { code, err } = await failure(['--agent-keys-file', join(ROOT, 'no-such-file')]);
    expect(code).toBe(1);
    expect(err).toContain('no-such-file');
  });

  it('exits 1 naming the socket when --stateful-socket cannot be created', async () => {
    const { code, err } = await failure(['--stateful-socket', join(ROOT, 'no-such-dir', 's')]);
    expect(code).toBe(1);
    expect(err).toContain(`cannot serve the stateful socket ${join(ROOT, 'no-such-dir', 's')}`);
  });

  it.each([
    [['--stateful-fault', '{"action":"nap"}'], "--stateful-fault: 'action' must be one of"],
    [['--stateful-fault', '{"action":"drop","times":0}'], "--stateful-fault: 'times' must be"],
    [['--stateful-fault', 'drop'], '--stateful-fault must be JSON'],
    [['--cluster-name', ''], '--cluster-name must not be empty'],
    [['--stateful-socket', ''], '--stateful-socket must not be empty'],
    [['--stateful-max-connections', '0'], '--stateful-max-connections must be an integer in 1..'],
    [['--max-inflight-bytes', '1e9'], '--max-inflight-bytes must be an integer in 1..'],
    [['--vd-feed-offset', '18446744073709551616'], '--vd-feed-offset must be an integer in 0..'],
    [['--indexer-down=yes'], "Option '--indexer-down' does not take an argument"],
    [['--agent-key', '001'], '--agent-key must be ID=HEX'],
    [['--agent-key', 'web=abcd'], '--agent-key must be ID=HEX'],
    [['--agent-keys-file', ''], '--agent-keys-file must not be empty'],
    [['--fault', '{"action":"vanish"}'], "--fault: 'action' must be one of"],
    [['--fault', 'drop'], '--fault must be JSON'],
    [['--drop-probability', '1.5'], '--drop-probability must be a number in 0..1'],
    [['--empty-sessions', 'never'], '--empty-sessions must be accept or refuse'],
    [['--workers', '0'], '--workers must be an integer in 1..'],
    [['--seed', '4294967296'], '--seed must be an integer in 0..4294967295'],
  ])('rejects %j with exit code 2', async (args, message) => {
    const { code, err } = await failure(args);
    expect(code).toBe(2);
    expect(err).toContain(message);
  });

  it('rejects a bad option with exit code 2 and the usage', async () => {
    const { code, err } = await failure(['--port', 'eighty']);
    expect(code).toBe(2);
    expect(err).toContain('--port must be an integer');
    expect(err).toContain('Usage: agent-sync-mock-manager');
  });
});
