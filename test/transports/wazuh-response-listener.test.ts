import { lstatSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AgentSyncProtocol } from '../../src/index.js';
import { MockManager } from '../../src/testing/index.js';
import { WazuhResponseListener } from '../../src/transports/wazuh-response-listener.js';
import { MessageEncoder, Status } from '../../src/wire/index.js';
import { cleanupAfterEach, tempDir } from '../helpers.js';
import { closed, connectUnix, frame, recordingLogger, until, utf8, write } from './support.js';

const cleanup = cleanupAfterEach();

/** A target that records what it is handed. */
function target(accept = true) {
  const got: string[] = [];
  return {
    got,
    parseResponseBuffer(bytes: Uint8Array): boolean {
      got.push(Buffer.from(bytes).toString('latin1'));
      return accept;
    },
  };
}

async function listening(options: ConstructorParameters<typeof WazuhResponseListener>[0] = {}) {
  const logger = recordingLogger();
  const listener = new WazuhResponseListener({ logger: logger.log, ...options });
  const path = join(tempDir(), 'fim_sync');
  const fim = target();
  const sca = target();
  listener.register('fim', fim);
  listener.register('sca', sca);
  await listener.listen(path);
  cleanup.push(() => listener.close());
  const connect = async () => {
    const socket = await connectUnix(path);
    cleanup.push(() => {
      socket.destroy();
    });
    return socket;
  };
  return { listener, path, fim, sca, logger, connect };
}

describe('WazuhResponseListener', () => {
  it('hands the bytes after <module>_sync to the module registered for it', async () => {
    const { fim, sca, connect } = await listening();
    const socket = await connect();
    await write(socket, frame('fim_sync \x00\x01abc'));
    await write(socket, frame('sca_sync xyz'));
    await until(() => fim.got.length === 1 && sca.got.length === 1);
    expect(fim.got).toEqual(['\x00\x01abc']);
    expect(sca.got).toEqual(['xyz']);
  });

  it('reassembles a frame written byte by byte', async () => {
    const { fim, connect } = await listening();
    const socket = await connect();
    const payload = new Uint8Array(3000).map((_, i) => i % 251);
    const bytes = frame(Buffer.concat([Buffer.from('fim_sync '), payload]));
    for (const byte of bytes) await write(socket, Uint8Array.of(byte));
    await until(() => fim.got.length === 1);
    expect(Buffer.from(fim.got[0] as string, 'latin1')).toEqual(Buffer.from(payload));
  });

  it('splits several frames that arrive in one write', async () => {
    const { fim, sca, connect } = await listening();
    const socket = await connect();
    const frames = [];
    for (let i = 0; i < 50; i++) frames.push(frame(`${i % 2 ? 'sca' : 'fim'}_sync m${i}`));
    // And a frame cut in two across the boundary of the next write.
    const tail = frame('fim_sync last');
    await write(socket, Buffer.concat([...frames, tail.subarray(0, 6)]));
    await write(socket, tail.subarray(6));
    await until(() => fim.got.length === 26 && sca.got.length === 25);
    expect(fim.got.slice(0, 3)).toEqual(['m0', 'm2', 'm4']);
    expect(fim.got.at(-1)).toBe('last');
    expect(sca.got.slice(0, 2)).toEqual(['m1', 'm3']);
  });

  it('drops a peer that disconnects mid-frame and keeps serving others', async () => {
    const { fim, connect, logger, listener } = await listening();
    const quitter = await connect();
    const bytes = frame('fim_sync never complete');
    await write(quitter, bytes.subarray(0, 10));
    quitter.end();
    await until(() => listener.connectionCount === 0);
    expect(logger.lines.some((l) => l.includes('mid-frame'))).toBe(true);
    expect(fim.got).toEqual([]);
    const other = await connect();
    await write(other, frame('fim_sync fine'));
    await until(() => fim.got.length === 1);
    expect(fim.got).toEqual(['fine']);
  });

  it('closes a connection that announces an oversized frame, without buffering it', async () => {
    const { fim, connect, logger } = await listening({ maxFrameBytes: 1024 });
    const good = await connect();
    const bad = await connect();
    const header = Buffer.alloc(4);
    header.writeUInt32LE(1025);
    await write(bad, header);
    await closed(bad);
    expect(logger.lines.some((l) => l.startsWith('warn') && l.includes('1025'))).toBe(true);
    // A frame at the cap still passes, on the connection that behaved.
    const max = Buffer.concat([Buffer.from('fim_sync '), Buffer.alloc(1024 - 9, 1)]);
    await write(good, frame(max));
    await until(() => fim.got.length === 1);
    expect(fim.got[0]?.length).toBe(1024 - 9);
  });

  it('logs and ignores an unknown module, a bad prefix and an empty frame', async () => {
    const { fim, connect, logger } = await listening();
    const socket = await connect();
    await write(socket, frame('syscheck_sync abc'));
    await write(socket, frame('garbage without prefix'));
    await write(socket, frame(''));
    await write(socket, frame('fim_syncabc'));
    await write(socket, frame('fim_sync ok'));
    await until(() => fim.got.length === 1);
    expect(fim.got).toEqual(['ok']);
    expect(logger.lines.filter((l) => l.startsWith('warn'))).toEqual([
      expect.stringContaining("unknown module 'syscheck'"),
      expect.stringContaining("no '<module>_sync ' prefix"),
      expect.stringContaining("no '<module>_sync ' prefix"),
      expect.stringContaining("no '<module>_sync ' prefix"),
    ]);
  });

  it('survives a target that throws or rejects the bytes', async () => {
    const logger = recordingLogger();
    const listener = new WazuhResponseListener({ logger: logger.log });
    const path = join(tempDir(), 's');
    const ok = target();
    listener.register('bad', {
      parseResponseBuffer() {
        throw new Error('boom');
      },
    });
    listener.register('no', target(false));
    listener.register('ok', ok);
    await listener.listen(path);
    cleanup.push(() => listener.close());
    const socket = await connectUnix(path);
    cleanup.push(() => {
      socket.destroy();
    });
    await write(socket, frame('bad_sync x'));
    await write(socket, frame('no_sync x'));
    await write(socket, frame('ok_sync y'));
    await until(() => ok.got.length === 1);
    expect(logger.lines.some((l) => l.includes('boom'))).toBe(true);
    expect(logger.lines.some((l) => l.includes("'no' rejected"))).toBe(true);
  });

  it('creates the socket owner-only and removes it on close', async () => {
    const { listener, path } = await listening();
    const info = statSync(path);
    expect(info.isSocket()).toBe(true);
    expect(info.mode & 0o777).toBe(0o600);
    await listener.close();
    expect(() => lstatSync(path)).toThrow(/ENOENT/);
  });

  it('replaces a stale socket file, refuses a live one and a regular file', async () => {
    const dir = tempDir();
    const stale = join(dir, 'stale');
    const old = createServer();
    await new Promise<void>((resolve) => old.listen(stale, resolve));
    // Simulate a crash: the file outlives its listener.
    renameSync(stale, `${stale}.keep`);
    await new Promise<void>((resolve) => old.close(() => resolve()));
    renameSync(`${stale}.keep`, stale);

    const listener = new WazuhResponseListener();
    const fim = target();
    listener.register('fim', fim);
    await listener.listen(stale);
    cleanup.push(() => listener.close());
    const socket = await connectUnix(stale);
    cleanup.push(() => {
      socket.destroy();
    });
    await write(socket, frame('fim_sync hi'));
    await until(() => fim.got.length === 1);

    await expect(new WazuhResponseListener().listen(stale)).rejects.toThrow(/another process/);
    const file = join(dir, 'file');
    writeFileSync(file, 'keep me');
    await expect(new WazuhResponseListener().listen(file)).rejects.toThrow(/not a socket/);
  });

  it('hands bytes to a real protocol: a valid response is accepted, junk is not', async () => {
    const listener = new WazuhResponseListener();
    const calls: boolean[] = [];
    const sync = new AgentSyncProtocol({
      moduleName: 'fim',
      dbPath: ':memory:',
      transport: new MockManager().transport('fim'),
    });
    cleanup.push(() => sync.close());
    listener.register('fim', {
      parseResponseBuffer: (bytes) => {
        const ok = sync.parseResponseBuffer(bytes);
        calls.push(ok);
        return ok;
      },
    });
    const path = join(tempDir(), 'fim');
    await listener.listen(path);
    cleanup.push(() => listener.close());
    const socket = await connectUnix(path);
    cleanup.push(() => {
      socket.destroy();
    });
    const ack = new MessageEncoder().startAck(Status.Ok, 5n).slice();
    await write(socket, frame(Buffer.concat([utf8.encode('fim_sync '), ack])));
    await write(socket, frame('fim_sync not flatbuffers'));
    await until(() => calls.length === 2);
    expect(calls).toEqual([true, false]);
  });
});
