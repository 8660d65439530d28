// MockManagerServer's Wazuh 5.0 front, `POST /stateful`, over real sockets (TCP and a Unix
// socket): the manager's answers come through, and the request-level checks answer as the real
// module's front does (wazuh/wazuh f838614611, inventory_sync_server/src/http_server/ and
// remoted's decoding/bodyDecoder.cpp; see src/testing/stateful-http.ts).
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, lstatSync, openSync, rmSync } from 'node:fs';
import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { Agent, type IncomingMessage, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { MockManagerServer, type MockManagerServerOptions } from '../../src/testing/index.js';
import { Mode } from '../../src/wire-5/index.js';
import { cleanupAfterEach } from '../helpers.js';
import { body, delta, json, PACKAGES, send, stateful } from './stateful-http-support.js';

const cleanup = cleanupAfterEach();

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mms-'));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function startServer(options: MockManagerServerOptions = {}) {
  const server = new MockManagerServer(options);
  cleanup.push(() => server.close());
  await server.start();
  return server;
}

describe('MockManagerServer POST /stateful', () => {
  it('applies a session sent over TCP; the document shows in GET /documents', async () => {
    const server = await startServer();
    const tcp = { port: server.httpPort };
    const reply = await stateful(tcp, delta('curl'), '1', { 'x-session-id': 'syscollector-7' });
    expect(reply).toMatchObject({ status: 200, body: '{"status":"ok"}' });
    expect(reply.headers['content-type']).toBe('application/json');
    expect(reply.headers.connection).toBe('close');
    const documents = await json(tcp, 'GET', `/documents?index=${PACKAGES}&agent=001`);
    expect(documents.body).toMatchObject([
      { id: 'wazuh_001_curl', agentId: '001', data: { package: { name: 'curl' } } },
    ]);
  });

  it('serves the same endpoint on a Unix socket; GET /stats counts the requests', async () => {
    const path = join(await tempDir(), 'inventory-sync.sock');
    const server = await startServer({ statefulSocketPath: path });
    expect(server.port).toBeGreaterThan(0);
    const unix = { socketPath: path };
    expect(await stateful(unix, delta('vim'))).toMatchObject({ status: 200 });
    expect(server.manager.documents(PACKAGES).map((d) => d.id)).toEqual(['wazuh_001_vim']);
    const stats = await json(unix, 'GET', '/stats');
    expect(stats.body).toMatchObject({
      statefulStats: { requests: 1, answered: { 200: 1 }, unanswered: 0 },
    });
  });

  it("answers the manager's refusals: 400, 403 and 409", async () => {
    const server = await startServer();
    const tcp = { port: server.httpPort };
    const refused = (status: number, error: string) => ({
      status,
      body: JSON.stringify({ error, code: status }),
    });
    expect(await stateful(tcp, 'not a flatbuffer')).toMatchObject(
      refused(400, 'Body is not a valid inventory sync message'),
    );
    expect(await stateful(tcp, delta('a'), '')).toMatchObject(
      refused(400, 'Missing agent id header'),
    );
    expect(await stateful(tcp, delta('a'), '002')).toMatchObject(refused(403, 'identity mismatch'));
    const otherCluster = body(
      { clusterName: 'other', index: [PACKAGES] },
      {
        type: 'Cleans',
        indices: [PACKAGES],
      },
    );
    expect(await stateful(tcp, otherCluster)).toMatchObject(refused(403, 'identity mismatch'));
    const check = body(
      { mode: Mode.ModuleCheck, index: [PACKAGES] },
      { type: 'ChecksumModule', index: PACKAGES, checksum: 'not the checksum' },
    );
    expect(await stateful(tcp, check)).toMatchObject({
      status: 409,
      body: '{"status":"checksum_mismatch"}',
    });
    expect(server.manager.documentCount()).toBe(0);
  });

  it('refuses a chunked body with 411, before the manager sees it', async () => {
    const server = await startServer();
    const reply = await send(
      { port: server.httpPort },
      {
        headers: { 'x-wazuh-agent-id': '001', 'transfer-encoding': 'chunked' },
        body: delta('a'),
      },
    );
    expect(reply).toMatchObject({
      status: 411,
      body: '{"error":"Content-Length is required; chunked transfer encoding is not supported","code":411}',
    });
    expect(server.manager.statefulStats.requests).toBe(0);
  });

  it('refuses a declared length over the budget with 413 without reading the body', async () => {
    const path = join(await tempDir(), 's');
    const server = await startServer({
      managerOptions: { maxInflightBytes: 2 * 1024 * 1024 },
      statefulSocketPath: path,
    });
    const cap = server.manager.statefulMaxBodyBytes;
    expect(cap).toBe(2 * 1024 * 1024 - 282_624);
    // Only the head is sent: the answer cannot wait for a body.
    const reply = await send(
      { socketPath: path },
      { headers: { 'x-wazuh-agent-id': '001' }, declareOnly: cap + 1 },
    );
    expect(reply).toMatchObject({
      status: 413,
      body: '{"error":"Request body is too large","code":413}',
    });
    expect(server.manager.statefulStats.requests).toBe(0);
  });

  it('refuses a Content-Encoding other than zstd with 415, and zstd where zlib lacks it', async () => {
    const server = await startServer();
    const tcp = { port: server.httpPort };
    const unsupported = '{"error":"Unsupported Content-Encoding","code":415}';
    for (const encoding of ['gzip', 'identity']) {
      expect(
        await stateful(tcp, delta('a'), '001', { 'content-encoding': encoding }),
      ).toMatchObject({ status: 415, body: unsupported });
    }
    const compress = (zlib as unknown as { zstdCompressSync?: (data: Uint8Array) => Buffer })
      .zstdCompressSync;
    if (compress === undefined) {
      // Node 20: no zstd in zlib.
      expect(await stateful(tcp, delta('a'), '001', { 'content-encoding': 'zstd' })).toMatchObject({
        status: 415,
        body: unsupported,
      });
    } else {
      expect(
        await stateful(tcp, compress(delta('z')), '001', { 'content-encoding': 'ZSTD' }),
      ).toMatchObject({ status: 200 });
      expect(await stateful(tcp, 'not zstd', '001', { 'content-encoding': 'zstd' })).toMatchObject({
        status: 400,
        body: '{"error":"Malformed compressed body","code":400}',
      });
    }
    expect(server.manager.documentCount()).toBe(compress === undefined ? 0 : 1);
  });

  it('POST /stateful-faults scripts a 503 with Retry-After; DELETE /faults removes it', async () => {
    const server = await startServer();
    const tcp = { port: server.httpPort };
    expect(await json(tcp, 'POST', '/stateful-faults', { action: 'nap' })).toEqual({
      status: 400,
      body: {
        error: '\'action\' must be one of unavailable, internal-error, delay, drop, got "nap"',
      },
    });
    expect(await json(tcp, 'POST', '/stateful-faults', { action: 'drop', extra: 1 })).toEqual({
      status: 400,
      body: { error: "unknown stateful fault field 'extra'" },
    });
    const fault = { action: 'unavailable', retryAfterSeconds: 7, times: 'Infinity' };
    expect(await json(tcp, 'POST', '/stateful-faults', fault)).toEqual({
      status: 201,
      body: { status: 'ok' },
    });
    for (let i = 0; i < 2; i++) {
      const reply = await stateful(tcp, delta('a'));
      expect(reply).toMatchObject({
        status: 503,
        body: '{"error":"Service unavailable","code":503}',
      });
      expect(reply.headers['retry-after']).toBe('7');
    }
    expect(await json(tcp, 'DELETE', '/faults')).toEqual({ status: 200, body: { status: 'ok' } });
    const after = await stateful(tcp, delta('a'));
    expect(after.status).toBe(200);
    expect(after.headers['retry-after']).toBeUndefined();
  });

  it('answers GET /stateful with 405 and the allowed method', async () => {
    const server = await startServer();
    const reply = await send({ port: server.httpPort }, { method: 'GET' });
    expect(reply.status).toBe(405);
    expect(reply.headers.allow).toBe('POST');
  });

  it('closes the connection after each answer, as the real front does; a keep-alive client still gets every answer', async () => {
    const path = join(await tempDir(), 's');
    const server = await startServer({ statefulSocketPath: path });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    cleanup.push(() => agent.destroy());
    for (const target of [{ socketPath: path }, { port: server.httpPort }]) {
      for (const id of ['a', 'b', 'c']) {
        const reply = await send(target, {
          headers: { 'x-wazuh-agent-id': '001' },
          body: delta(id),
          agent,
        });
        expect(reply.status).toBe(200);
        expect(reply.headers.connection).toBe('close');
      }
    }
    expect(server.manager.documentCount(PACKAGES)).toBe(3);
    expect(server.manager.statefulStats.answered).toEqual({ 200: 6 });
    // The JSON endpoints keep their connections: two GETs on one socket.
    const seen: unknown[] = [];
    const keep = new Agent({ keepAlive: true, maxSockets: 1 });
    cleanup.push(() => keep.destroy());
    for (let i = 0; i < 2; i++) {
      const req = request({ socketPath: path, path: '/health', agent: keep });
      req.on('socket', (socket) => seen.push(socket));
      const res = await new Promise<IncomingMessage>((resolve, reject) => {
        req.on('response', resolve);
        req.on('error', reject);
        req.end();
      });
      res.resume();
      await new Promise((resolve) => res.on('end', resolve));
      expect(res.headers.connection).toBe('keep-alive');
    }
    expect(seen[0]).toBe(seen[1]);
  });

  it('answers a connection over statefulMaxConnections with 503 and closes it', async () => {
    const path = join(await tempDir(), 's');
    // The manager logs the fault when the first request reaches it.
    let reached: () => void = () => {};
    const dropped = new Promise<void>((resolve) => {
      reached = resolve;
    });
    const logger = (_level: string, message: string) => {
      if (message.includes('fault: drop')) reached();
    };
    const server = await startServer({
      statefulSocketPath: path,
      statefulMaxConnections: 1,
      managerOptions: { logger },
    });
    const unix = { socketPath: path };
    // The first connection holds its slot: its request is never answered.
    server.manager.injectStateful({ action: 'drop' });
    const held = request({
      socketPath: path,
      method: 'POST',
      path: '/stateful',
      headers: { 'x-wazuh-agent-id': '001' },
      agent: false,
    });
    held.on('error', () => {});
    held.end(delta('a'));
    cleanup.push(() => held.destroy());
    await dropped;
    const reply = await stateful(unix, delta('b'));
    expect(reply).toMatchObject({
      status: 503,
      body: '{"error":"Too many concurrent connections","code":503}',
    });
    expect(reply.headers.connection).toBe('close');
    expect(server.manager.statefulStats.requests).toBe(1);
    // The TCP port has no cap.
    expect((await stateful({ port: server.httpPort }, delta('c'))).status).toBe(200);
  });
});

describe('MockManagerServer statefulSocketPath', () => {
  it('replaces a stale socket file and removes its own on close', async () => {
    const path = join(await tempDir(), 's');
    // A socket file nothing accepts on: what a killed server leaves behind.
    const killed = spawnSync(process.execPath, [
      '-e',
      "require('net').createServer().listen(process.argv[1], () => process.kill(process.pid, 'SIGKILL'))",
      path,
    ]);
    expect(killed.signal).toBe('SIGKILL');
    expect(lstatSync(path).isSocket()).toBe(true);
    const server = new MockManagerServer({ statefulSocketPath: path });
    expect((await server.start()).statefulSocketPath).toBe(path);
    expect((await stateful({ socketPath: path }, delta('a'))).status).toBe(200);
    await server.close();
    expect(existsSync(path)).toBe(false);
  });

  it('refuses a live socket and a file that is not a socket, leaving both alone', async () => {
    const dir = await tempDir();
    const live = join(dir, 'live');
    const other = await startServer({ statefulSocketPath: live });
    await expect(new MockManagerServer({ statefulSocketPath: live }).start()).rejects.toMatchObject(
      { code: 'EADDRINUSE' },
    );
    expect((await stateful({ socketPath: live }, delta('a'))).status).toBe(200);
    expect(other.manager.documentCount()).toBe(1);

    const file = join(dir, 'file');
    await writeFile(file, 'keep me');
    await expect(new MockManagerServer({ statefulSocketPath: file }).start()).rejects.toThrow(
      /not a socket/,
    );
    expect(existsSync(file)).toBe(true);
  });

  it("does not remove a successor's file on close", async () => {
    const path = join(await tempDir(), 's');
    const server = await startServer({ statefulSocketPath: path });
    await unlink(path);
    closeSync(openSync(path, 'w'));
    await server.close();
    expect(existsSync(path)).toBe(true);
    rmSync(path);
  });

  it('rejects a bad statefulMaxConnections', () => {
    expect(() => new MockManagerServer({ statefulMaxConnections: 0 })).toThrow(
      /statefulMaxConnections/,
    );
  });
});
