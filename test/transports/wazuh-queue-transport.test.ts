import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { WazuhQueueTransport } from '../../src/transports/wazuh-queue-transport.js';
import { MAX_DATAGRAM_BYTES } from '../../src/wire/framing.js';
import { cleanupAfterEach, tempDir } from '../helpers.js';
import { DatagramServer, utf8 } from './support.js';

const cleanup = cleanupAfterEach();

function server(path: string): DatagramServer {
  const s = new DatagramServer(path);
  cleanup.push(() => s.close());
  return s;
}

function transport(path: string, options = {}): WazuhQueueTransport {
  const t = new WazuhQueueTransport({ socketPath: path, ...options });
  cleanup.push(() => t.close());
  return t;
}

describe('WazuhQueueTransport', () => {
  it('sends s:<escaped module>:<bytes> as one datagram, byte for byte', async () => {
    const path = join(tempDir(), 'queue');
    const daemon = server(path);
    const t = transport(path);
    await t.start();
    const message = Uint8Array.from([0, 1, 0x3a, 0x7c, 255, 10, 0]);
    await t.send(message, 'a|b:c');
    await t.send(utf8.encode('hello'), 'fim');
    await daemon.waitFor(2);
    expect(daemon.received[0]).toEqual(
      Buffer.concat([Buffer.from('s:a||b|:c:'), Buffer.from(message)]),
    );
    expect(daemon.received[1]?.toString()).toBe('s:fim:hello');
  });

  it('defaults to <home>/queue/sockets/queue', () => {
    expect(new WazuhQueueTransport().socketPath).toBe('/var/ossec/queue/sockets/queue');
    expect(new WazuhQueueTransport({ home: '/opt/wazuh' }).socketPath).toBe(
      '/opt/wazuh/queue/sockets/queue',
    );
  });

  it('sends a datagram of exactly 65536 bytes and refuses one byte more', async () => {
    const path = join(tempDir(), 'queue');
    const daemon = server(path);
    const t = transport(path);
    await t.start();
    const header = 's:fim:'.length;
    const fits = new Uint8Array(MAX_DATAGRAM_BYTES - header).fill(7);
    await t.send(fits, 'fim');
    await daemon.waitFor(1);
    expect(daemon.received[0]?.length).toBe(MAX_DATAGRAM_BYTES);
    await expect(t.send(new Uint8Array(fits.length + 1), 'fim')).rejects.toThrow(RangeError);
    // The refusal did not break the transport.
    await t.send(utf8.encode('after'), 'fim');
    await daemon.waitFor(2);
    expect(daemon.received[1]?.toString()).toBe('s:fim:after');
  });

  it('fails start() with the path and ENOENT when the socket is missing', async () => {
    const path = join(tempDir(), 'missing');
    const t = transport(path);
    const error = await t.start().then(
      () => undefined,
      (e: Error & { code?: string }) => e,
    );
    expect(error?.message).toContain(path);
    expect(error?.message).toContain('ENOENT');
    expect(error?.code).toBe('ENOENT');
    await expect(t.send(utf8.encode('x'), 'fim')).rejects.toThrow(/not connected/);
  });

  it('fails start() with ECONNREFUSED when nothing is bound to the socket file', async () => {
    const path = join(tempDir(), 'queue');
    // A daemon that died: its socket file stays behind.
    new DatagramServer(path).close();
    const t = transport(path);
    await expect(t.start()).rejects.toThrow(/ECONNREFUSED.*agent running/);
  });

  it('rejects a send after the daemon went away and reconnects on start()', async () => {
    const path = join(tempDir(), 'queue');
    const first = new DatagramServer(path);
    const t = transport(path);
    await t.start();
    await t.send(utf8.encode('one'), 'fim');
    await first.waitFor(1);
    first.close();
    await expect(t.send(utf8.encode('lost'), 'fim')).rejects.toThrow(/ECONNREFUSED/);
    // The restarted daemon binds a new socket at the same path.
    const { rmSync } = await import('node:fs');
    rmSync(path);
    const second = server(path);
    await t.start();
    await t.send(utf8.encode('two'), 'fim');
    await second.waitFor(1);
    expect(second.received[0]?.toString()).toBe('s:fim:two');
  });

  it('waits for room when the queue is full and delivers everything in order', async () => {
    const path = join(tempDir(), 'queue');
    const daemon = server(path);
    const t = transport(path);
    await t.start();
    const count = 40;
    const size = 60_000;
    // Not awaited one by one: the burst outruns the daemon (it reads only when
    // the event loop turns), so unix-dgram reports congestion.
    const sends = Array.from({ length: count }, (_, i) =>
      t.send(new Uint8Array(size).fill(i), 'fim'),
    );
    expect(t.pendingSends).toBeGreaterThan(0);
    await Promise.all(sends);
    await daemon.waitFor(count);
    expect(daemon.received.map((d) => d[d.length - 1])).toEqual(
      Array.from({ length: count }, (_, i) => i),
    );
    expect(daemon.received.every((d) => d.length === size + 's:fim:'.length)).toBe(true);
  });

  it('refuses sends beyond maxPendingSends instead of buffering them', async () => {
    const path = join(tempDir(), 'queue');
    const daemon = server(path);
    const t = transport(path, { maxPendingSends: 2 });
    await t.start();
    const results = await Promise.allSettled(
      Array.from({ length: 30 }, () => t.send(new Uint8Array(60_000), 'fim')),
    );
    const refused = results.filter((r) => r.status === 'rejected');
    expect(refused.length).toBeGreaterThan(0);
    expect(String((refused[0] as PromiseRejectedResult).reason)).toMatch(/queue is full/);
    const sent = results.length - refused.length;
    await daemon.waitFor(sent);
    expect(daemon.received).toHaveLength(sent);
  });

  it('rejects waiting sends on close()', async () => {
    const path = join(tempDir(), 'queue');
    server(path);
    const t = transport(path);
    await t.start();
    const sends = Array.from({ length: 30 }, () => t.send(new Uint8Array(60_000), 'fim'));
    expect(t.pendingSends).toBeGreaterThan(0);
    t.close();
    const results = await Promise.allSettled(sends);
    expect(results.some((r) => r.status === 'rejected')).toBe(true);
    await expect(t.start()).rejects.toThrow(/closed/);
  });

  it('refuses a socket path that does not fit sockaddr_un', () => {
    expect(() => new WazuhQueueTransport({ socketPath: `/${'x'.repeat(120)}` })).toThrow(
      RangeError,
    );
  });

  it('explains how to install unix-dgram when it cannot be loaded', async () => {
    vi.resetModules();
    vi.doMock('unix-dgram', () => {
      throw new Error("Cannot find package 'unix-dgram'");
    });
    try {
      const { WazuhQueueTransport: Fresh } = await import(
        '../../src/transports/wazuh-queue-transport.js'
      );
      const t = new Fresh({ socketPath: join(tempDir(), 'queue') });
      await expect(t.start()).rejects.toThrow(
        'WazuhQueueTransport needs the optional dependency unix-dgram: npm install unix-dgram',
      );
    } finally {
      vi.doUnmock('unix-dgram');
      vi.resetModules();
    }
  });
});
