// HttpSessionTransport on real sockets: a node:http(s) server in the test records each request
// (headers, body bytes, signature) and answers through a MockManager's /stateful front, over
// TCP, a Unix socket and TLS; every status path as AgentSyncProtocol sees it.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { type AddressInfo, createServer as createNetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { computeIndexChecksum, Mode, Operation } from '../../src/index.js';
import { MockManager } from '../../src/testing/index.js';
import {
  HttpSessionTransport,
  type HttpSessionTransportOptions,
} from '../../src/transports/http-session-transport.js';
import { verifyRequestSignature } from '../../src/transports/request-signature.js';
import { cleanupAfterEach, doc, fullSessionAgent, type LogRecord } from '../helpers.js';

const INDEX = 'wazuh-states-inventory-packages';
const KEY = '0123456789abcdef'.repeat(4);
const cleanup = cleanupAfterEach();

interface Recorded {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  /** Header names as sent, lower-cased, in order. */
  names: string[];
  body: Buffer;
}

type Responder = (request: Recorded, res: ServerResponse, socket: Socket) => void | Promise<void>;

interface Rig {
  requests: Recorded[];
  connections: number;
  closed: number;
  manager: MockManager;
  /** Answers the next request instead of the manager (a queue). */
  once(responder: Responder): void;
  /** Answers every request before the manager gets it; return false to pass it on. */
  always(responder: (r: Recorded, res: ServerResponse, socket: Socket) => boolean): void;
  url: string;
  socketPath?: string;
}

/** The manager's answer to a request, as its HTTP front would write it. */
async function forward(manager: MockManager, r: Recorded, res: ServerResponse) {
  const answer = await manager.stateful(r.body, {
    agentId: String(r.headers['x-wazuh-agent-id'] ?? ''),
    sessionId: String(r.headers['x-session-id'] ?? ''),
  });
  res.writeHead(answer.status, {
    'Content-Type': 'application/json',
    ...(answer.retryAfterSeconds ? { 'Retry-After': String(answer.retryAfterSeconds) } : {}),
  });
  res.end(answer.body);
}

async function rig(
  how: { unix?: boolean; tls?: { key: string; cert: string } } = {},
): Promise<Rig> {
  const manager = new MockManager({ clusterName: 'wazuh' });
  const queue: Responder[] = [];
  let filter: ((r: Recorded, res: ServerResponse, socket: Socket) => boolean) | undefined;
  const state = { connections: 0, closed: 0 };
  const requests: Recorded[] = [];
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const names: string[] = [];
      for (let i = 0; i < req.rawHeaders.length; i += 2) {
        names.push((req.rawHeaders[i] as string).toLowerCase());
      }
      const r: Recorded = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        names,
        body: Buffer.concat(chunks),
      };
      requests.push(r);
      const next = queue.shift();
      if (next) {
        await next(r, res, req.socket);
        return;
      }
      if (filter?.(r, res, req.socket)) return;
      await forward(manager, r, res);
    });
  };
  const server: Server = how.tls
    ? createHttpsServer({ key: how.tls.key, cert: how.tls.cert }, handler)
    : createHttpServer(handler);
  server.on(how.tls ? 'secureConnection' : 'connection', (socket: Socket) => {
    state.connections++;
    socket.on('close', () => state.closed++);
  });
  let url: string;
  let socketPath: string | undefined;
  if (how.unix) {
    const dir = mkdtempSync(join(tmpdir(), 'http-st-'));
    socketPath = join(dir, 'inventory-sync.sock');
    await new Promise<void>((r) => server.listen(socketPath, r));
    url = 'http://localhost/stateful';
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  } else {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    url = `${how.tls ? 'https' : 'http'}://localhost:${port}`;
  }
  cleanup.push(
    () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  );
  cleanup.push(() => manager.close());
  return {
    requests,
    get connections() {
      return state.connections;
    },
    get closed() {
      return state.closed;
    },
    manager,
    once: (responder) => queue.push(responder),
    always: (f) => {
      filter = f;
    },
    url,
    ...(socketPath ? { socketPath } : {}),
  };
}

function transport(r: Rig, options: Partial<HttpSessionTransportOptions> = {}) {
  const t = new HttpSessionTransport({
    url: r.url,
    ...(r.socketPath ? { socketPath: r.socketPath } : {}),
    agentId: '001',
    ...options,
  });
  cleanup.push(() => t.close());
  return t;
}

function agentOn(t: HttpSessionTransport, logs: LogRecord[] = []) {
  const agent = fullSessionAgent(t, { logs });
  cleanup.push(() => agent.close());
  return agent;
}

const verifies = (r: Recorded, now?: number) =>
  verifyRequestSignature(r.headers.authorization, {
    method: r.method,
    target: r.url,
    body: r.body,
    protocolVersion: r.headers['protocol-version'] as string,
    keyFor: (id) => (Number(id) === 1 ? KEY : undefined),
    ...(now === undefined ? {} : { now }),
  });

const session = (body = 'session bytes') => ({
  id: `syscollector-${Math.floor(Math.random() * 1e9)}`,
  moduleName: 'syscollector',
  body: new TextEncoder().encode(body),
});
const never = new AbortController().signal;

describe('HttpSessionTransport: the request', () => {
  it('over TCP, signed: exact headers, the body bytes, a signature the manager accepts', async () => {
    const r = await rig();
    const agent = agentOn(transport(r, { agentKey: KEY }));
    agent.persistDifference('a', Operation.Create, INDEX, doc('a'));
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true, sent: 1 });
    const [req] = r.requests;
    if (!req) throw new Error('no request');
    expect(req.method).toBe('POST');
    expect(req.url).toBe('/stateful');
    expect(req.names.sort()).toEqual(
      [
        'authorization',
        'connection',
        'content-length',
        'content-type',
        'host',
        'protocol-version',
        'x-session-id',
        'x-wazuh-agent-id',
      ].sort(),
    );
    expect(req.headers).toMatchObject({
      'content-type': 'application/octet-stream',
      'content-length': String(req.body.length),
      'protocol-version': '1',
      'x-wazuh-agent-id': '001',
      connection: 'keep-alive',
    });
    expect(req.headers['x-session-id']).toMatch(/^syscollector-[0-9]+$/);
    expect(req.headers.authorization).toMatch(/^Wazuh 001:[0-9]+:[0-9a-f]{32}$/);
    expect(verifies(req)).toMatchObject({ ok: true, agentId: '001' });
    expect(r.manager.documents(INDEX).map((d) => d.id)).toEqual(['wazuh_001_a']);
  });

  it('over a Unix socket, unsigned: 200 stores the documents and the rows leave the queue', async () => {
    const r = await rig({ unix: true });
    const agent = agentOn(transport(r));
    agent.persistDifference('a', Operation.Create, INDEX, doc('a'));
    agent.persistDifference('b', Operation.Create, INDEX, doc('b'));
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true, sent: 2 });
    expect(agent.pendingCount).toBe(0);
    expect(
      r.manager
        .documents(INDEX)
        .map((d) => d.id)
        .sort(),
    ).toEqual(['wazuh_001_a', 'wazuh_001_b']);
    const [req] = r.requests;
    expect(req?.headers.authorization).toBeUndefined();
    expect(req?.headers.host).toBe('localhost');
  });

  it('a url without a path posts to /stateful; bad options are refused at construction', () => {
    expect(new HttpSessionTransport({ url: 'http://127.0.0.1:1', agentId: '1' }).url.pathname).toBe(
      '/stateful',
    );
    expect(
      new HttpSessionTransport({ url: 'http://h/x/stateful', agentId: '1' }).url.pathname,
    ).toBe('/x/stateful');
    expect(() => new HttpSessionTransport({ agentId: '001' })).toThrow(/url or a socketPath/);
    expect(() => new HttpSessionTransport({ url: 'ftp://h', agentId: '001' })).toThrow(/http/);
    expect(() => new HttpSessionTransport({ url: 'http://h', agentId: 'agent' })).toThrow(
      /decimal/,
    );
    expect(
      () => new HttpSessionTransport({ url: 'http://h', agentId: '1', agentKey: 'ab' }),
    ).toThrow(RangeError);
    expect(() => new HttpSessionTransport({ url: 'http://h', agentId: '1', timeoutMs: 0 })).toThrow(
      RangeError,
    );
  });
});

describe('HttpSessionTransport: TLS', () => {
  let pem: { key: string; cert: string } | undefined;
  let reason = '';
  try {
    const dir = mkdtempSync(join(tmpdir(), 'http-st-tls-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost,IP:127.0.0.1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    pem = {
      key: readFileSync(join(dir, 'key.pem'), 'utf8'),
      cert: readFileSync(join(dir, 'cert.pem'), 'utf8'),
    };
    rmSync(dir, { recursive: true, force: true });
  } catch (error) {
    reason = `no self-signed certificate (the openssl CLI is needed): ${String(error)}`;
  }

  it.skipIf(!pem)(`trusts the given CA and refuses an unknown one ${reason}`, async () => {
    if (!pem) return;
    const r = await rig({ tls: pem });
    const trusted = transport(r, { agentKey: KEY, tls: { ca: pem.cert } });
    const agent = agentOn(trusted);
    agent.persistDifference('a', Operation.Create, INDEX, doc('a'));
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true });
    expect(verifies(r.requests[0] as Recorded)).toMatchObject({ ok: true });
    await expect(transport(r).send(session(), never)).rejects.toThrow(/self[- ]signed/i);
  });
});

describe('HttpSessionTransport: answers as the sync sees them', () => {
  it('400, 403 and 413 fail with their reason, sent once', async () => {
    const r = await rig();
    const agent = agentOn(transport(r));
    agent.persistDifference('a', Operation.Create, INDEX, doc('a'));
    for (const [status, reason] of [
      [400, 'invalid-session'],
      [413, 'too-large'],
    ] as const) {
      const before = r.requests.length;
      r.once((_r, res) => {
        res.writeHead(status, { 'Content-Type': 'application/json' });
        res.end(`{"error":"refused","code":${status}}`);
      });
      const result = await agent.synchronizeModule(Mode.Delta);
      expect(result).toMatchObject({ ok: false, reason });
      expect(!result.ok && result.message).toContain(`{"error":"refused","code":${status}}`);
      expect(r.requests.length - before).toBe(1);
    }
    // 403 from the manager itself: the transport's agent id is not the session's.
    const other = agentOn(transport(r, { agentId: '002' }));
    other.persistDifference('a', Operation.Create, INDEX, doc('a'));
    const result = await other.synchronizeModule(Mode.Delta);
    expect(result).toMatchObject({ ok: false, reason: 'forbidden' });
    expect(!result.ok && result.message).toContain('identity mismatch');
    expect(agent.pendingCount).toBe(1);
  });

  it('Check: 200 is a match, 409 a mismatch', async () => {
    const r = await rig();
    const agent = agentOn(transport(r));
    agent.persistDifference('a', Operation.Create, INDEX, doc('a'));
    await agent.synchronizeModule(Mode.Delta);
    const good = computeIndexChecksum([JSON.parse(doc('a'))]);
    expect(await agent.checkIntegrity(INDEX, good)).toMatchObject({ outcome: 'match' });
    const bad = computeIndexChecksum([JSON.parse(doc('b'))]);
    expect(await agent.checkIntegrity(INDEX, bad)).toMatchObject({ outcome: 'mismatch' });
    expect(r.requests.slice(-2).map((q) => q.headers['x-session-id'] !== undefined)).toEqual([
      true,
      true,
    ]);
  });

  it('503 with Retry-After: the answer carries it, and the sync waits at least that long', async () => {
    const r = await rig();
    const logs: LogRecord[] = [];
    const agent = agentOn(transport(r), logs);
    agent.persistDifference('a', Operation.Create, INDEX, doc('a'));
    r.manager.injectStateful({ action: 'unavailable', retryAfterSeconds: 1 });
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true, sent: 1 });
    expect(r.requests).toHaveLength(2);
    expect(r.requests[0]?.headers['x-session-id']).toBe(r.requests[1]?.headers['x-session-id']);
    expect(
      logs.find((l) => l.fields?.delayMs !== undefined)?.fields?.delayMs,
    ).toBeGreaterThanOrEqual(1000);
  });

  it('429 and 5xx are retried by the transport when asked (retry.attempts), the same bytes each time', async () => {
    const r = await rig();
    const t = transport(r, { retry: { attempts: 3, baseMs: 0 } });
    for (const status of [429, 502]) {
      r.once((_r, res) => {
        res.writeHead(status);
        res.end();
      });
    }
    r.always((_req, res) => {
      res.writeHead(200);
      res.end('{"status":"ok"}');
      return true;
    });
    const s = session();
    expect(await t.send(s, never)).toEqual({ status: 200, body: '{"status":"ok"}' });
    expect(r.requests.map((q) => q.body.toString())).toEqual(Array(3).fill('session bytes'));
    expect(new Set(r.requests.map((q) => q.headers['x-session-id']))).toEqual(new Set([s.id]));
  });

  it('401 is re-signed once with a fresh timestamp; a second 401 fails unauthorized', async () => {
    const r = await rig();
    let clock = 1_767_225_600_000;
    const t = transport(r, {
      agentKey: KEY,
      now: () => {
        clock += 1000;
        return clock;
      },
    });
    const agent = agentOn(t);
    agent.persistDifference('a', Operation.Create, INDEX, doc('a'));
    const unauthorized: Responder = (_r, res) => {
      res.writeHead(401);
      res.end('{"error":"Unauthorized","code":401}');
    };
    r.once(unauthorized);
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true });
    const [first, second] = r.requests.map((q) => verifies(q, Math.floor(clock / 1000)));
    expect(first).toMatchObject({ ok: true });
    expect(second).toMatchObject({ ok: true });
    expect(first?.ok && second?.ok && second.timestamp > first.timestamp).toBe(true);

    agent.persistDifference('b', Operation.Create, INDEX, doc('b'));
    r.once(unauthorized);
    r.once(unauthorized);
    const before = r.requests.length;
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({
      ok: false,
      reason: 'unauthorized',
    });
    expect(r.requests.length - before).toBe(2);
  });

  it('415: resent uncompressed, and compression stays off for the transport', async () => {
    const r = await rig();
    // A stand-in compressor (this runtime may have no zstd): the server only looks at the header.
    const t = transport(r, {
      agentKey: KEY,
      compression: 'zstd',
      zstdCompress: (body) => Buffer.concat([Buffer.from('Z:'), body]),
    });
    r.always((req, res) => {
      if (req.headers['content-encoding'] !== 'zstd') return false;
      res.writeHead(415, { 'Content-Type': 'application/json' });
      res.end('{"error":"Unsupported Media Type","code":415}');
      return true;
    });
    const agent = agentOn(t);
    agent.persistDifference('a', Operation.Create, INDEX, doc('a'));
    expect(t.compressing).toBe(true);
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true });
    const [compressed, plain] = r.requests;
    expect(compressed?.headers['content-encoding']).toBe('zstd');
    expect(compressed?.body.subarray(0, 2).toString()).toBe('Z:');
    expect(verifies(compressed as Recorded)).toMatchObject({ ok: true }); // signed as sent
    expect(plain?.headers['content-encoding']).toBeUndefined();
    expect(plain?.body).toEqual(compressed?.body.subarray(2));
    expect(t.compressing).toBe(false);
    agent.persistDifference('b', Operation.Create, INDEX, doc('b'));
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true });
    expect(r.requests).toHaveLength(3);
    expect(r.requests[2]?.headers['content-encoding']).toBeUndefined();
  });

  const nativeZstd = (zlib as { zstdDecompressSync?: (b: Buffer) => Buffer }).zstdDecompressSync;
  it.skipIf(nativeZstd)(
    "'zstd' without a compressor in this runtime is refused at construction",
    () => {
      expect(
        () => new HttpSessionTransport({ url: 'http://h', agentId: '1', compression: 'zstd' }),
      ).toThrow(/zstdCompressSync/);
    },
  );

  it.skipIf(!nativeZstd)(
    'with node:zlib zstd, the body arrives compressed and decompresses to the session',
    async () => {
      const r = await rig();
      const t = transport(r, { compression: 'zstd' });
      r.always((req, res) => {
        res.writeHead(200);
        res.end();
        return req !== undefined;
      });
      const s = session('x'.repeat(10_000));
      await t.send(s, never);
      const [req] = r.requests;
      expect(req?.headers['content-encoding']).toBe('zstd');
      expect(nativeZstd?.(req?.body as Buffer)).toEqual(Buffer.from(s.body));
    },
  );
});

describe('HttpSessionTransport: connections', () => {
  it('head and body leave in one write, on a new and on a reused connection', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'http-st-raw-'));
    const socketPath = join(dir, 'raw.sock');
    const firstChunks: string[] = [];
    const server = createNetServer((socket) => {
      let first = true;
      socket.on('data', (chunk: Buffer) => {
        if (first) firstChunks.push(chunk.toString('latin1'));
        first = false;
        if (!chunk.toString('latin1').endsWith('BODY-END')) return;
        first = true;
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\n{}');
      });
    });
    await new Promise<void>((r) => server.listen(socketPath, r));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    cleanup.push(() => new Promise<void>((r) => server.close(() => r())));
    const t = new HttpSessionTransport({ socketPath, agentId: '001' });
    cleanup.push(() => t.close());
    for (let i = 0; i < 2; i++) {
      expect(await t.send(session(`${'b'.repeat(1000)}BODY-END`), never)).toMatchObject({
        status: 200,
      });
    }
    expect(firstChunks).toHaveLength(2);
    for (const chunk of firstChunks) {
      expect(chunk.startsWith('POST /stateful HTTP/1.1\r\n')).toBe(true);
      expect(chunk.endsWith(`\r\n\r\n${'b'.repeat(1000)}BODY-END`)).toBe(true);
    }
  });

  it('keep-alive: several sessions over one connection', async () => {
    const r = await rig();
    const agent = agentOn(transport(r));
    for (const id of ['a', 'b', 'c']) {
      agent.persistDifference(id, Operation.Create, INDEX, doc(id));
      expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true });
    }
    expect(r.requests).toHaveLength(3);
    expect(r.connections).toBe(1);
  });

  it('a server that never answers: the attempt times out and the connection is dropped', async () => {
    const r = await rig();
    r.always(() => true); // never answers
    const t = transport(r, { timeoutMs: 50 });
    await expect(t.send(session(), never)).rejects.toThrow(/no answer within 50 ms/);
    while (r.closed < 1) await new Promise((resolve) => setImmediate(resolve));
    expect(r.closed).toBe(1);
  });

  it('a reset connection rejects; with retry.attempts the next attempt goes through', async () => {
    const r = await rig();
    const reset: Responder = (_r, _res, socket) => {
      socket.resetAndDestroy();
    };
    r.once(reset);
    await expect(transport(r).send(session(), never)).rejects.toThrow(/ECONNRESET|socket hang up/);
    r.once(reset);
    r.always((_req, res) => {
      res.writeHead(200);
      res.end('{"status":"ok"}');
      return true;
    });
    const t = transport(r, { retry: { attempts: 2, baseMs: 0 } });
    expect(await t.send(session(), never)).toMatchObject({ status: 200 });
  });

  it('the signal aborts a request in flight; close() drops the connections and refuses more', async () => {
    const r = await rig();
    r.always(() => true); // never answers
    const t = transport(r);
    const controller = new AbortController();
    const pending = t.send(session(), controller.signal);
    while (r.requests.length < 1) await new Promise((resolve) => setImmediate(resolve));
    controller.abort();
    await expect(pending).rejects.toThrow(/aborted/);
    const second = t.send(session(), never);
    while (r.requests.length < 2) await new Promise((resolve) => setImmediate(resolve));
    t.close();
    await expect(second).rejects.toThrow(/closed/);
    await expect(t.send(session(), never)).rejects.toThrow(/closed/);
    while (r.closed < r.connections) await new Promise((resolve) => setImmediate(resolve));
    expect(r.closed).toBe(r.connections);
  });
});
