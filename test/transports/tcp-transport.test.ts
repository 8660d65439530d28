import { createServer, type Server, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { AgentSyncProtocol, Mode, Operation } from '../../src/index.js';
import { MockManager, MockManagerServer } from '../../src/testing/index.js';
import { encodeFrame, FrameReader } from '../../src/transports/stream-framing.js';
import { TcpTransport } from '../../src/transports/tcp-transport.js';
import { cleanupAfterEach } from '../helpers.js';
import { recordingLogger, until, utf8 } from './support.js';

const cleanup = cleanupAfterEach();

async function startServer(options: ConstructorParameters<typeof MockManagerServer>[0] = {}) {
  const server = new MockManagerServer(options);
  await server.start();
  cleanup.push(() => server.close());
  return server;
}

function agent(port: number, id: string, moduleName = 'inventory') {
  const transport = new TcpTransport({ port, moduleName, reconnect: { minDelayMs: 10 } });
  const sync = new AgentSyncProtocol({
    moduleName,
    dbPath: ':memory:',
    transport,
    agentInfo: { id },
  });
  cleanup.push(() => transport.close());
  cleanup.push(() => sync.close());
  return { transport, sync };
}

async function getJson(port: number, path: string): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: response.status, body: await response.json() };
}

describe('TcpTransport with MockManagerServer', () => {
  it('syncs, with a retransmission, and the HTTP endpoint shows the result', async () => {
    const server = await startServer();
    server.manager.inject({ type: 'DataValue', action: 'drop', seq: 5n });
    const { sync } = agent(server.port, '001');
    for (let i = 0; i < 100; i++) {
      sync.persistDifference(`pkg${i}`, Operation.Create, 'packages', JSON.stringify({ i }));
    }
    sync.persistDifference('port1', Operation.Create, 'ports', JSON.stringify({ port: 22 }));
    const result = await sync.synchronizeModule(Mode.Delta, { timeoutMs: 5000 });
    expect(result).toMatchObject({ ok: true, sent: 101, retransmitted: 1 });

    const all = await getJson(server.httpPort, '/documents');
    expect(all.body).toHaveLength(101);
    const ports = await getJson(server.httpPort, '/documents?index=ports');
    expect(ports.body).toEqual([
      {
        index: 'ports',
        id: '001_port1',
        itemId: 'port1',
        agentId: '001',
        module: 'inventory',
        data: { port: 22 },
      },
    ]);
    const none = await getJson(server.httpPort, '/documents?agent=999');
    expect(none.body).toEqual([]);
    const stats = await getJson(server.httpPort, '/stats');
    expect(stats.body).toMatchObject({
      sessionsCompleted: 1,
      reqRetsSent: 2, // the answer to the probe End, and the one for the dropped item
      connections: 1,
      faults: { dropped: 1 },
    });
    expect(await getJson(server.httpPort, '/health')).toEqual({
      status: 200,
      body: { status: 'ok' },
    });
    expect((await getJson(server.httpPort, '/nope')).status).toBe(404);
    expect(
      (await fetch(`http://127.0.0.1:${server.httpPort}/health`, { method: 'POST' })).status,
    ).toBe(405);

    // Check mode over the same connection.
    expect(await sync.requiresFullSync('ports', 'not-the-checksum', { timeoutMs: 5000 })).toBe(
      true,
    );
  });

  it('routes each answer to the connection that sent the message', async () => {
    const server = await startServer();
    const agents = Array.from({ length: 4 }, (_, i) =>
      agent(server.port, `a${i}`, i % 2 ? 'fim' : 'sca'),
    );
    agents.forEach(({ sync }, i) => {
      for (let j = 0; j < 20; j++) {
        sync.persistDifference(
          `item${j}`,
          Operation.Create,
          `idx${i % 2}`,
          JSON.stringify({ i, j }),
        );
      }
    });
    const results = await Promise.all(agents.map(({ sync }) => sync.synchronizeModule(Mode.Delta)));
    expect(results.every((r) => r.ok)).toBe(true);
    expect(server.manager.documents()).toHaveLength(80);
    expect(server.connectionCount).toBe(4);
  });

  it('reconnects after the server restarts between syncs', async () => {
    const manager = new MockManager();
    cleanup.push(() => manager.close());
    const first = new MockManagerServer({ manager });
    const { port } = await first.start();
    const { sync, transport } = agent(port, '002');
    sync.persistDifference('a', Operation.Create, 'idx', JSON.stringify({ v: 1 }));
    expect((await sync.synchronizeModule(Mode.Delta)).ok).toBe(true);

    await first.close();
    await until(() => !transport.connected);
    const second = await startServer({ manager, port });
    expect(second.port).toBe(port);

    sync.persistDifference('b', Operation.Create, 'idx', JSON.stringify({ v: 2 }));
    const result = await sync.synchronizeModule(Mode.Delta, { timeoutMs: 5000 });
    expect(result).toMatchObject({ ok: true, sent: 1 });
    expect(transport.connected).toBe(true);
    expect(
      manager
        .documents()
        .map((d) => d.itemId)
        .sort(),
    ).toEqual(['a', 'b']);
  });

  it('fails the sync with queue-unavailable when no server listens', async () => {
    const server = await startServer();
    const port = server.port;
    await server.close();
    const transport = new TcpTransport({ port });
    cleanup.push(() => transport.close());
    await expect(transport.start()).rejects.toThrow(/cannot connect to 127.0.0.1/);
    const { sync } = agent(port, '003');
    sync.persistDifference('a', Operation.Create, 'idx', '{"v":1}');
    const result = await sync.synchronizeModule(Mode.Delta, { timeoutMs: 1000 });
    expect(result).toMatchObject({ ok: false, reason: 'queue-unavailable' });
    expect(sync.pendingCount).toBe(1);
  });

  it('waits for drain when the peer does not read, and fails the wait when it drops', async () => {
    // A server that accepts and reads nothing until told to.
    const sockets: Socket[] = [];
    const raw: Server = createServer((socket) => {
      socket.pause();
      sockets.push(socket);
    });
    await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
    cleanup.push(() => new Promise<void>((resolve) => raw.close(() => resolve())));
    const port = (raw.address() as { port: number }).port;
    const transport = new TcpTransport({ port });
    cleanup.push(() => transport.close());
    await transport.start();
    await until(() => sockets.length === 1);

    const chunk = new Uint8Array(60_000);
    let waited = false;
    for (let i = 0; i < 2000 && !waited; i++) {
      const send = transport.send(chunk, 'fim');
      const settled = await Promise.race([send.then(() => true), delay(50).then(() => false)]);
      if (!settled) {
        waited = true;
        // The next send queues behind the drain instead of writing more.
        const next = transport.send(chunk, 'fim');
        let nextDone = false;
        void next.then(() => {
          nextDone = true;
        });
        await delay(20);
        expect(nextDone).toBe(false);
        (sockets[0] as Socket).resume();
        await send;
        await next;
      }
    }
    expect(waited).toBe(true);

    // Stop reading again, fill up, and drop the connection under a waiting send.
    (sockets[0] as Socket).pause();
    let pending: Promise<void> | undefined;
    for (let i = 0; i < 2000 && pending === undefined; i++) {
      const send = transport.send(chunk, 'fim');
      const settled = await Promise.race([send.then(() => true), delay(50).then(() => false)]);
      if (!settled) pending = send;
    }
    expect(pending).toBeDefined();
    (sockets[0] as Socket).destroy();
    await expect(pending).rejects.toThrow(/closed before the message was sent/);
    await expect(transport.send(chunk, 'fim')).rejects.toThrow(/connection lost/);
  });

  it('delivers only its own modules\u2019 responses and drops a connection on an oversized frame', async () => {
    const sockets: Socket[] = [];
    const raw = createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
    cleanup.push(() => new Promise<void>((resolve) => raw.close(() => resolve())));
    const port = (raw.address() as { port: number }).port;
    const logger = recordingLogger();
    const transport = new TcpTransport({
      port,
      moduleName: 'fim',
      maxFrameBytes: 1000,
      logger: logger.log,
    });
    cleanup.push(() => transport.close());
    const got: string[] = [];
    transport.onResponse((bytes) => got.push(Buffer.from(bytes).toString()));
    await transport.start();
    await until(() => sockets.length === 1);
    const peer = sockets[0] as Socket;

    // What the transport sends: length, then s:<escaped module>:<bytes>.
    const received: Buffer[] = [];
    const reader = new FrameReader(100_000);
    peer.on('data', (chunk: Buffer) => reader.push(chunk, (p) => received.push(Buffer.from(p))));
    await transport.send(utf8.encode('hello'), 'a|b:c');
    await until(() => received.length === 1);
    expect(received[0]?.toString()).toBe('s:a||b|:c:hello');

    peer.write(encodeFrame(utf8.encode('sca_sync '), utf8.encode('not mine')));
    peer.write(encodeFrame(utf8.encode('fim_sync '), utf8.encode('mine')));
    await until(() => got.length === 1);
    expect(got).toEqual(['mine']);
    expect(logger.lines.some((l) => l.includes("unknown module 'sca'"))).toBe(true);

    const header = Buffer.alloc(4);
    header.writeUInt32LE(1001);
    peer.write(header);
    await until(() => !transport.connected);
    expect(logger.lines.some((l) => l.includes('1001'))).toBe(true);
  });

  it('gives a pino-style logger the transport and its address as fields', async () => {
    const sockets: Socket[] = [];
    const raw = createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
    cleanup.push(() => new Promise<void>((resolve) => raw.close(() => resolve())));
    const port = (raw.address() as { port: number }).port;
    const calls: Array<{ fields: object; message: string }> = [];
    const record = (fields: object, message: string) => calls.push({ fields, message });
    const logger = { debug: record, info: record, warn: record, error: record };
    const transport = new TcpTransport({ port, moduleName: 'fim', logger });
    cleanup.push(() => transport.close());
    await transport.start();
    await until(() => sockets.length === 1);
    (sockets[0] as Socket).write(encodeFrame(utf8.encode('sca_sync '), utf8.encode('x')));
    await until(() => calls.some((c) => c.message.includes("unknown module 'sca'")));
    for (const call of calls) {
      expect(call.fields).toMatchObject({ component: 'tcp-transport', host: '127.0.0.1', port });
    }
  });

  it('refuses start() after close()', async () => {
    const server = await startServer();
    const transport = new TcpTransport({ port: server.port });
    await transport.start();
    await transport.close();
    await expect(transport.start()).rejects.toThrow(/closed/);
    await expect(transport.send(new Uint8Array(1), 'fim')).rejects.toThrow(/closed/);
  });
});

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
