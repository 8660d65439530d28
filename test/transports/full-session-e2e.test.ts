// The 5.0 wire end to end on real sockets: AgentSyncProtocol ('fullSession') with an
// HttpSessionTransport against a started MockManagerServer, over TCP and its Unix socket, with
// and without agent keys (remoted's signature check), every status path as the library sees it;
// then the whole 5.0 path on one machine: module → QueueSyncTransport → AgentdIntake → signed
// HttpSessionTransport → MockManagerServer → HCRESULT → WazuhResponseListener → the instance.
import { once } from 'node:events';
import { createConnection, createServer } from 'node:net';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  AgentSyncProtocol,
  computeIndexChecksum,
  Mode,
  Operation,
  QueueSyncTransport,
  WazuhResponseListener,
} from '../../src/index.js';
import {
  AgentdIntake,
  MockManagerServer,
  type MockManagerServerOptions,
  parseClientKeys,
} from '../../src/testing/index.js';
import {
  HttpSessionTransport,
  type HttpSessionTransportOptions,
} from '../../src/transports/http-session-transport.js';
import {
  cleanupAfterEach,
  dbFile,
  doc,
  fullSessionAgent,
  type LogRecord,
  tempDir,
} from '../helpers.js';
import {
  delta,
  json,
  PACKAGES,
  send,
  signedHeaders,
  type Target,
} from '../testing/stateful-http-support.js';
import { closed, connectUnix, recordingLogger, write } from './support.js';

const KEY_001 = '0123456789abcdef'.repeat(4);
const KEY_002 = 'fedcba9876543210'.repeat(4);
const nativeZstd = (zlib as { zstdDecompressSync?: unknown }).zstdDecompressSync !== undefined;

const cleanup = cleanupAfterEach();

interface Rig {
  server: MockManagerServer;
  socketPath: string;
  /** The JSON endpoints, over TCP. */
  http: Target;
  /** Log lines of the server and its manager. */
  lines: string[];
}

/** A started server with its Unix socket; `keys`: check signatures (agents 001 and 002). */
async function rig(keys: boolean, options: MockManagerServerOptions = {}): Promise<Rig> {
  const socketPath = join(tempDir(), 'inventory-sync.sock');
  const { lines, log } = recordingLogger();
  const server = new MockManagerServer({
    statefulSocketPath: socketPath,
    ...(keys ? { agentKeys: { '001': KEY_001, '2': KEY_002 } } : {}),
    logger: log,
    ...options,
    managerOptions: { clusterName: 'wazuh', logger: log, ...options.managerOptions },
  });
  cleanup.push(() => server.close());
  const { httpPort } = await server.start();
  return { server, socketPath, http: { port: httpPort }, lines };
}

type Via = 'tcp' | 'unix';

function transport(
  r: Rig,
  via: Via,
  options: Partial<HttpSessionTransportOptions> = {},
): HttpSessionTransport {
  const t = new HttpSessionTransport({
    ...(via === 'tcp'
      ? { url: `http://127.0.0.1:${r.server.httpPort}/stateful` }
      : { socketPath: r.socketPath }),
    agentId: '001',
    ...options,
  });
  cleanup.push(() => t.close());
  return t;
}

function agentOn(
  t: HttpSessionTransport,
  options: { clusterName?: string; logs?: LogRecord[] } = {},
): AgentSyncProtocol {
  const agent = fullSessionAgent(t, {
    ...options,
    syncDefaults: { timeoutMs: 10_000, retries: 2, backoff: { minMs: 0, maxMs: 1 } },
  });
  cleanup.push(() => agent.close());
  return agent;
}

/** The server's log lines of requests remoted's check refused with 401. */
const refused401 = (r: Rig) => r.lines.filter((l) => l.includes('stateful request refused 401'));

describe.each([
  ['tcp', false],
  ['tcp', true],
  ['unix', false],
  ['unix', true],
] as const)('over %s, agent keys %s', (via, keys) => {
  const signing = (agentKey = KEY_001) => (keys ? { agentKey } : {});

  it('200: the documents land; 409 after a Check that does not match', async () => {
    const r = await rig(keys);
    const agent = agentOn(transport(r, via, signing()));
    agent.persistDifference('a', Operation.Create, PACKAGES, doc('a'));
    agent.persistDifference('b', Operation.Create, PACKAGES, doc('b'));
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true, sent: 2 });
    expect(agent.pendingCount).toBe(0);
    const documents = await json(r.http, 'GET', `/documents?index=${PACKAGES}&agent=001`);
    expect((documents.body as Array<{ id: string }>).map((d) => d.id).sort()).toEqual([
      'wazuh_001_a',
      'wazuh_001_b',
    ]);
    const good = computeIndexChecksum([JSON.parse(doc('a')), JSON.parse(doc('b'))]);
    expect(await agent.checkIntegrity(PACKAGES, good)).toMatchObject({ outcome: 'match' });
    const bad = computeIndexChecksum([JSON.parse(doc('a'))]);
    expect(await agent.checkIntegrity(PACKAGES, bad)).toMatchObject({ outcome: 'mismatch' });
    expect(r.server.manager.statefulStats.answered).toEqual({ 200: 2, 409: 2 });
    expect(refused401(r)).toEqual([]);
  });

  it("403: the manager's cluster is another, or the agent sending is not the Start's", async () => {
    const r = await rig(keys);
    const elsewhere = agentOn(transport(r, via, signing()), { clusterName: 'cluster01' });
    elsewhere.persistDifference('a', Operation.Create, PACKAGES, doc('a'));
    const cluster = await elsewhere.synchronizeModule(Mode.Delta);
    expect(cluster).toMatchObject({ ok: false, reason: 'forbidden' });
    expect(!cluster.ok && cluster.message).toContain('identity mismatch');
    // Agent 002 (signing with its own key, when keys are checked) sending agent 001's session.
    const other = agentOn(transport(r, via, { agentId: '002', ...signing(KEY_002) }));
    other.persistDifference('a', Operation.Create, PACKAGES, doc('a'));
    expect(await other.synchronizeModule(Mode.Delta)).toMatchObject({
      ok: false,
      reason: 'forbidden',
    });
    // Refused once each: not worth a retry.
    expect(r.server.manager.statefulStats.answered).toEqual({ 403: 2 });
    expect(r.server.manager.documentCount()).toBe(0);
  });

  it('400: a Check of an index no agent may check is an invalid session', async () => {
    const r = await rig(keys);
    const agent = agentOn(transport(r, via, signing()));
    const check = await agent.checkIntegrity('wazuh-alerts', 'f00d');
    expect(check).toMatchObject({ outcome: 'inconclusive', reason: 'invalid-session' });
    expect(check.outcome === 'inconclusive' && check.message).toContain(
      'ChecksumModule index must be an agent-scoped state index',
    );
    expect(r.server.manager.statefulStats.answered).toEqual({ 400: 1 });
  });

  it('503 with Retry-After (POST /stateful-faults) and 500 are retried, the wait honoured', async () => {
    const r = await rig(keys);
    const logs: LogRecord[] = [];
    const agent = agentOn(transport(r, via, signing()), { logs });
    const fault = { action: 'unavailable', retryAfterSeconds: 1 };
    expect(await json(r.http, 'POST', '/stateful-faults', fault)).toMatchObject({ status: 201 });
    r.server.manager.injectStateful({ action: 'internal-error', skip: 1 });
    agent.persistDifference('a', Operation.Create, PACKAGES, doc('a'));
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true, sent: 1 });
    expect(r.server.manager.statefulStats.answered).toEqual({ 200: 1, 500: 1, 503: 1 });
    const waits = logs.flatMap((l) => (l.fields?.delayMs === undefined ? [] : [l.fields.delayMs]));
    expect(waits[0]).toBeGreaterThanOrEqual(1000);
    expect(r.server.manager.documents(PACKAGES).map((d) => d.id)).toEqual(['wazuh_001_a']);
  });
});

describe("remoted's signature check (agentKeys)", () => {
  it('401 for a wrong key: re-signed once, then the sync fails unauthorized', async () => {
    const r = await rig(true);
    const agent = agentOn(transport(r, 'unix', { agentKey: KEY_002 }));
    agent.persistDifference('a', Operation.Create, PACKAGES, doc('a'));
    const result = await agent.synchronizeModule(Mode.Delta);
    expect(result).toMatchObject({ ok: false, reason: 'unauthorized' });
    expect(!result.ok && result.message).toContain('Invalid client authentication');
    expect(refused401(r)).toHaveLength(2);
    expect(refused401(r).every((l) => l.includes('(invalid-mac)'))).toBe(true);
    expect(r.server.manager.statefulStats.requests).toBe(0);
    expect(agent.pendingCount).toBe(1);
  });

  it('401 for an unsigned transport: sent once (nothing to re-sign with)', async () => {
    const r = await rig(true);
    const agent = agentOn(transport(r, 'tcp'));
    agent.persistDifference('a', Operation.Create, PACKAGES, doc('a'));
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({
      ok: false,
      reason: 'unauthorized',
    });
    expect(refused401(r).map((l) => l.match(/\((.*?)\)/)?.[1])).toEqual(['missing']);
  });

  it("the signed agent goes on, not X-Wazuh-Agent-Id; remoted's 400s and its order before 415", async () => {
    const r = await rig(true);
    const unix = { socketPath: r.socketPath };
    const signed = (body: Uint8Array, agentId = '001', key = KEY_001, timestamp?: number) =>
      signedHeaders(body, agentId, key, timestamp);
    // Signed as 1 (client.keys spells it 001), claiming 002 in the header: stored as 001's.
    const a = delta('a');
    const claimed = await send(unix, {
      headers: { ...signed(a, '1'), 'x-wazuh-agent-id': '002' },
      body: a,
    });
    expect(claimed).toMatchObject({ status: 200 });
    expect(r.server.manager.documents(PACKAGES)).toMatchObject([{ id: 'wazuh_001_a' }]);

    const refusal = (status: number, error: string) => ({
      status,
      body: JSON.stringify({ error, code: status }),
    });
    const b = delta('b');
    const { 'protocol-version': _, ...unversioned } = signed(b);
    expect(await send(unix, { headers: unversioned, body: b })).toMatchObject(
      refusal(400, 'Missing required header: protocol-version'),
    );
    expect(
      await send(unix, { headers: { ...signed(b), 'protocol-version': '2' }, body: b }),
    ).toMatchObject(refusal(400, 'Unsupported protocol-version'));
    const unauthorized = refusal(401, 'Invalid client authentication');
    const expired = signed(b, '001', KEY_001, Math.floor(Date.now() / 1000) - 301);
    expect(await send(unix, { headers: expired, body: b })).toMatchObject(unauthorized);
    expect(await send(unix, { headers: signed(b, '3'), body: b })).toMatchObject(unauthorized);
    // Content-Encoding is acted on only once the request is authenticated.
    const gzip = { 'content-encoding': 'gzip' };
    expect(
      await send(unix, { headers: { ...gzip, 'protocol-version': '1' }, body: b }),
    ).toMatchObject(unauthorized);
    expect(await send(unix, { headers: { ...signed(b), ...gzip }, body: b })).toMatchObject(
      refusal(415, 'Unsupported Content-Encoding'),
    );
    const empty = new Uint8Array();
    expect(await send(unix, { headers: signed(empty), body: empty })).toMatchObject(
      refusal(400, 'Empty request body'),
    );
    expect(refused401(r).map((l) => l.match(/\((.*?)\)/)?.[1])).toEqual([
      'expired',
      'unknown-agent',
      'missing',
    ]);
    expect(r.server.manager.statefulStats.requests).toBe(1);
  });

  it("parseClientKeys reads client.keys as remoted's keystore does", () => {
    const text = [
      '# a comment',
      '',
      ' 004 indented any aa',
      '001 web any k1',
      '2 db 10.0.0.2 k2\r',
      '003 !removed any k3',
      '005 #removed any k5',
      'six six any k6',
      '007 short any',
      '4294967296 overflow any k8',
      '0001 web-again any k1b',
    ].join('\n');
    expect(parseClientKeys(text)).toEqual({ '001': 'k1b', '002': 'k2' });
  });

  it('a key remoted cannot decode (upper case) refuses that agent; a function keystore works', async () => {
    const upper = await rig(false, { agentKeys: { '001': KEY_001.toUpperCase() } });
    const agent = agentOn(transport(upper, 'unix', { agentKey: KEY_001 }));
    agent.persistDifference('a', Operation.Create, PACKAGES, doc('a'));
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ reason: 'unauthorized' });
    expect(refused401(upper)[0]).toContain('(bad-key)');

    const asked: string[] = [];
    const lookup = await rig(false, {
      agentKeys: (id) => {
        asked.push(id);
        return id === '001' ? KEY_001 : undefined;
      },
    });
    const signed = agentOn(transport(lookup, 'tcp', { agentKey: KEY_001, agentId: '1' }));
    signed.persistDifference('a', Operation.Create, PACKAGES, doc('a'));
    expect(await signed.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true });
    expect(asked).toEqual(['001']);
    expect(() => new MockManagerServer({ agentKeys: { agent: KEY_001 } })).toThrow(TypeError);
  });
});

describe('the HTTP front as an agent meets it', () => {
  it('413: a session over the body cap (maxInflightBytes) fails too-large, not retried', async () => {
    const r = await rig(true, { managerOptions: { maxInflightBytes: 1 } });
    const cap = r.server.manager.statefulMaxBodyBytes;
    const agent = agentOn(transport(r, 'unix', { agentKey: KEY_001 }));
    agent.persistDifference(
      'big',
      Operation.Create,
      PACKAGES,
      doc('big', { pad: 'x'.repeat(cap) }),
    );
    const result = await agent.synchronizeModule(Mode.Delta);
    expect(result).toMatchObject({ ok: false, reason: 'too-large' });
    expect(!result.ok && result.message).toContain('Request body is too large');
    expect(r.server.manager.statefulStats.requests).toBe(0);
    expect(agent.pendingCount).toBe(1);
  });

  it.skipIf(nativeZstd)(
    '415 where the runtime has no zstd (Node 20): the transport resends uncompressed, signed anew',
    async () => {
      const r = await rig(true);
      // A stand-in compressor: this runtime has none, and the mock refuses zstd here (415).
      const t = transport(r, 'unix', {
        agentKey: KEY_001,
        compression: 'zstd',
        zstdCompress: (body) => Buffer.concat([Buffer.from('Z:'), body]),
      });
      const agent = agentOn(t);
      agent.persistDifference('a', Operation.Create, PACKAGES, doc('a'));
      expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true });
      expect(t.compressing).toBe(false);
      expect(r.server.manager.statefulStats.requests).toBe(1);
    },
  );

  it.skipIf(!nativeZstd)(
    'zstd where the runtime has it: the signed compressed body is decoded and applied',
    async () => {
      const r = await rig(true);
      const t = transport(r, 'tcp', { agentKey: KEY_001, compression: 'zstd' });
      const agent = agentOn(t);
      agent.persistDifference('a', Operation.Create, PACKAGES, doc('a'));
      expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true });
      expect(t.compressing).toBe(true);
    },
  );

  it('503 over the connection cap: the sync fails manager-offline, then goes through', async () => {
    const r = await rig(true, { statefulMaxConnections: 1 });
    // Connections are accepted in order: this one takes the only slot and keeps it.
    const held = await connectUnix(r.socketPath);
    const agent = agentOn(transport(r, 'unix', { agentKey: KEY_001 }));
    agent.persistDifference('a', Operation.Create, PACKAGES, doc('a'));
    const result = await agent.synchronizeModule(Mode.Delta, { retries: 0 });
    expect(result).toMatchObject({ ok: false, reason: 'manager-offline' });
    expect(!result.ok && result.message).toContain('Too many concurrent connections');
    held.destroy();
    await closed(held);
    // Until the server has seen the close too, a connection is still refused 503.
    while (
      (await send({ socketPath: r.socketPath }, { method: 'GET', path: '/health' })).status === 503
    );
    const again = await agent.synchronizeModule(Mode.Delta);
    expect(again).toMatchObject({ ok: true, sent: 1 });
  });

  it('a request answered never (fault drop, applied) is timed out and resent; the session is applied once', async () => {
    const r = await rig(true);
    r.server.manager.injectStateful({ action: 'drop', applied: true });
    const agent = agentOn(transport(r, 'unix', { agentKey: KEY_001, timeoutMs: 500 }));
    agent.persistDifference('a', Operation.Create, PACKAGES, doc('a'));
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true, sent: 1 });
    // (A loaded machine may time out an answered attempt too: more 200s, never a second store.)
    const { unanswered, answered } = r.server.manager.statefulStats;
    expect({ unanswered, answered: Object.keys(answered) }).toEqual({
      unanswered: 1,
      answered: ['200'],
    });
    expect(r.server.manager.documentCount(PACKAGES)).toBe(1);
  });

  it('a peer that disconnects mid-request: the attempt fails, the sync resends it', async () => {
    const r = await rig(true);
    // A relay in front of the manager's socket that hangs up on the first request's first bytes.
    const relayPath = join(tempDir(), 'relay.sock');
    let cut = 0;
    const relay = createServer((client) => {
      if (cut++ === 0) {
        client.once('data', () => client.destroy());
        return;
      }
      const upstream = createConnection(r.socketPath);
      client.pipe(upstream).pipe(client);
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
    });
    await new Promise<void>((resolve) => relay.listen(relayPath, resolve));
    cleanup.push(() => new Promise((resolve) => relay.close(resolve)));
    const logs: LogRecord[] = [];
    const t = new HttpSessionTransport({
      socketPath: relayPath,
      agentId: '001',
      agentKey: KEY_001,
    });
    cleanup.push(() => t.close());
    const agent = agentOn(t, { logs });
    agent.persistDifference('a', Operation.Create, PACKAGES, doc('a'));
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true, sent: 1 });
    expect(cut).toBe(2);
    expect(logs.some((l) => /ECONNRESET|socket hang up/.test(l.message))).toBe(true);
    expect(r.server.manager.statefulStats).toMatchObject({ requests: 1, answered: { 200: 1 } });
  });

  it('a request split across many small writes on the Unix socket arrives whole', async () => {
    const r = await rig(true);
    const body = delta('split');
    const head =
      'POST /stateful HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\n' +
      `Content-Length: ${body.length}\r\nprotocol-version: 1\r\nX-Session-Id: syscollector-1\r\n` +
      `Authorization: ${signedHeaders(body, '001', KEY_001).authorization}\r\n\r\n`;
    const bytes = Buffer.concat([Buffer.from(head, 'latin1'), body]);
    const socket = await connectUnix(r.socketPath);
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    for (let at = 0; at < bytes.length; at += 7) {
      await write(socket, bytes.subarray(at, at + 7));
    }
    await once(socket, 'end');
    const answer = Buffer.concat(chunks).toString('latin1');
    expect(answer.startsWith('HTTP/1.1 200 ')).toBe(true);
    expect(answer.endsWith('{"status":"ok"}')).toBe(true);
    expect(r.server.manager.documents(PACKAGES)).toMatchObject([{ id: 'wazuh_001_split' }]);
    socket.destroy();
  });
});

describe('the whole 5.0 path on one machine', () => {
  it('module → queue-sync → agentd (signed POST) → manager → HCRESULT → the instance', async () => {
    const r = await rig(true);
    const dir = tempDir();
    const wmodules = join(dir, 'wmodules');
    const { lines, log } = recordingLogger();
    const forward = transport(r, 'unix', { agentKey: KEY_001 });
    const intake = new AgentdIntake({
      socketPath: join(dir, 'queue-sync'),
      transport: forward,
      commandSockets: () => wmodules,
      logger: log,
    });
    await intake.listen();
    cleanup.push(() => intake.close());
    const queue = new QueueSyncTransport({
      socketPath: intake.socketPath,
      handoffRetryPauseMs: 0,
      logger: log,
    });
    cleanup.push(() => queue.close());
    const agent = new AgentSyncProtocol({
      moduleName: 'syscollector',
      dbPath: dbFile(),
      transport: queue,
      wire: 'fullSession',
      clusterName: 'wazuh',
      agentInfo: { id: '001', osPlatform: 'ubuntu' },
      logger: log,
      syncDefaults: { timeoutMs: 10_000, retries: 2, backoff: { minMs: 0, maxMs: 1 } },
    });
    cleanup.push(() => agent.close());
    const listener = new WazuhResponseListener({ logger: log });
    listener.register('syscollector', agent);
    await listener.listen(wmodules);
    cleanup.push(() => listener.close());

    agent.persistDifference('a', Operation.Create, PACKAGES, doc('a'));
    agent.persistDifference('b', Operation.Create, PACKAGES, doc('b'));
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true, sent: 2 });
    expect(
      r.server.manager
        .documents(PACKAGES)
        .map((d) => d.id)
        .sort(),
    ).toEqual(['wazuh_001_a', 'wazuh_001_b']);

    // A 503 from the manager travels back as HCRESULT, and the module's sync resends the session.
    r.server.manager.injectStateful({ action: 'unavailable', retryAfterSeconds: 0 });
    agent.persistDifference('c', Operation.Create, PACKAGES, doc('c'));
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true, sent: 1 });
    await intake.drain();
    expect(intake.sessions.map((s) => s.answer?.status)).toEqual([200, 503, 200]);
    expect(intake.sessions[1]?.id).toBe(intake.sessions[2]?.id);
    expect(intake.stats).toMatchObject({ accepted: 3, resultsSent: 3 });
    expect(r.server.manager.documentCount(PACKAGES)).toBe(3);
    expect(refused401(r)).toEqual([]);
    expect(lines.some((l) => l.startsWith('error'))).toBe(false);
  });
});
