// QueueSyncTransport and AgentdIntake on real Unix sockets: the WZSY frame, the answer byte,
// hand-off retries, I/O bounds, and the intake's frame checks.
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AGENTD_ACCEPTED_ANSWER, QueueSyncTransport } from '../../src/index.js';
import { AgentdIntake, MockManager } from '../../src/testing/index.js';
import { cleanupAfterEach, tempDir } from '../helpers.js';
import { closed, connectUnix, recordingLogger, until, write } from './support.js';

const cleanup = cleanupAfterEach();

const never = new AbortController().signal;
const bodyOf = (...bytes: number[]) => Uint8Array.from(bytes);

function transport(
  socketPath: string,
  options: Partial<ConstructorParameters<typeof QueueSyncTransport>[0]> = {},
) {
  const t = new QueueSyncTransport({ socketPath, handoffRetryPauseMs: 0, ...options });
  cleanup.push(() => t.close());
  return t;
}

/** A bare server on `path`: each connection's bytes, and what `onData` does with them. */
async function rawServer(path: string, onData: (socket: Socket, received: Buffer) => void) {
  const connections: Buffer[][] = [];
  const server = createServer((socket) => {
    const chunks: Buffer[] = [];
    connections.push(chunks);
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      onData(socket, Buffer.concat(chunks));
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  cleanup.push(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
      }),
  );
  return { connections, bytes: (i: number) => Buffer.concat(connections[i] ?? []) };
}

async function intake(options: Partial<ConstructorParameters<typeof AgentdIntake>[0]> = {}) {
  const manager = new MockManager({ clusterName: 'wazuh' });
  const socketPath = join(tempDir(), 'queue-sync');
  const i = new AgentdIntake({ socketPath, manager, agentId: '001', ...options });
  await i.listen();
  cleanup.push(() => manager.close());
  cleanup.push(() => i.close());
  return i;
}

/** Bytes of a frame, built field by field. */
function wzsy(
  id: string,
  body: Uint8Array,
  idLength = id.length,
  bodyLength = BigInt(body.length),
) {
  const head = Buffer.alloc(16 + id.length);
  head.write('WZSY', 0, 'latin1');
  head.writeUInt32LE(idLength, 4);
  head.write(id, 8, 'latin1');
  head.writeBigUInt64LE(bodyLength, 8 + id.length);
  return Buffer.concat([head, body]);
}

/** The answer byte to `frame`, or 'closed' when the intake closed without one. */
async function answerTo(path: string, frame: Buffer, split?: number[]): Promise<number | 'closed'> {
  const socket = await connectUnix(path);
  cleanup.push(() => {
    socket.destroy();
  });
  const answer = new Promise<number | 'closed'>((resolve) => {
    socket.once('data', (chunk: Buffer) => resolve(chunk[0] as number));
    socket.once('close', () => resolve('closed'));
  });
  socket.on('error', () => {});
  let at = 0;
  for (const cut of [...(split ?? []), frame.length]) {
    await write(socket, frame.subarray(at, cut));
    at = cut;
  }
  return answer;
}

describe('QueueSyncTransport: the hand-off', () => {
  it('writes the frame exactly as the reference builds it, one connection per session', async () => {
    const path = join(tempDir(), 'queue-sync');
    // Reference: "WZSY" | u32 LE id length | id | u64 LE body length | body.
    const expected = Buffer.from(
      `575a5359 05000000 ${Buffer.from('mod-5').toString('hex')} 0300000000000000 010203`.replace(
        / /g,
        '',
      ),
      'hex',
    );
    const server = await rawServer(path, (socket, received) => {
      if (received.length >= expected.length) socket.end(Buffer.of(1));
    });
    const t = transport(path);
    const session = { id: 'mod-5', moduleName: 'mod', body: bodyOf(1, 2, 3) };
    expect(await t.send(session, never)).toEqual(AGENTD_ACCEPTED_ANSWER);
    expect(await t.send(session, never)).toEqual({
      status: 202,
      body: AGENTD_ACCEPTED_ANSWER.body,
    });
    expect(server.connections).toHaveLength(2);
    expect(server.bytes(0)).toEqual(expected);
    expect(server.bytes(1)).toEqual(expected);
  });

  it('an empty body is a frame with body length 0', async () => {
    const path = join(tempDir(), 'queue-sync');
    const server = await rawServer(path, (socket, received) => {
      if (received.length >= 24) socket.end(Buffer.of(1));
    });
    await transport(path).send(
      { id: 'x-12345678', moduleName: 'x', body: new Uint8Array() },
      never,
    );
    expect(server.bytes(0)).toEqual(wzsy('x-12345678', new Uint8Array()));
  });

  it('refused, then accepted on the next hand-off', async () => {
    const agentd = await intake();
    agentd.refuseNext(1);
    const logger = recordingLogger();
    const t = transport(agentd.socketPath, { logger: logger.log });
    const answer = await t.send({ id: 'custom-1', moduleName: 'custom', body: bodyOf(9) }, never);
    expect(answer.status).toBe(202);
    expect(agentd.stats).toMatchObject({ refused: 1, accepted: 1 });
    expect(agentd.sessions.map((s) => s.id)).toEqual(['custom-1']);
    expect(logger.lines.some((l) => /hand-off 1 failed: refused/.test(l))).toBe(true);
  });

  it('refused on every hand-off: 1 + handoffRetries tries, then a clear rejection', async () => {
    const agentd = await intake();
    agentd.refuseNext(4);
    const t = transport(agentd.socketPath);
    await expect(
      t.send({ id: 'custom-1', moduleName: 'custom', body: bodyOf(9) }, never),
    ).rejects.toThrow(/agentd did not take session custom-1 on 4 hand-offs .*refused/);
    expect(agentd.stats).toMatchObject({ refused: 4, accepted: 0 });
  });

  it('nothing listening: every hand-off fails to connect', async () => {
    const t = transport(join(tempDir(), 'queue-sync'), { handoffRetries: 1 });
    await expect(t.send({ id: 'm-1', moduleName: 'm', body: bodyOf(1) }, never)).rejects.toThrow(
      /on 2 hand-offs .*ENOENT/,
    );
    expect(await t.isReachable()).toBe(false);
  });

  it('a peer that never answers: the I/O bound fails the hand-off', async () => {
    const path = join(tempDir(), 'queue-sync');
    const server = await rawServer(path, () => {});
    const t = transport(path, { ioTimeoutMs: 50, handoffRetries: 1 });
    await expect(t.send({ id: 'm-1', moduleName: 'm', body: bodyOf(1) }, never)).rejects.toThrow(
      /no progress for 50 ms \(ioTimeoutMs\)/,
    );
    expect(server.connections).toHaveLength(2);
  });

  it('a peer that closes mid-frame without answering fails the hand-off', async () => {
    const path = join(tempDir(), 'queue-sync');
    await rawServer(path, (socket) => socket.destroy());
    const t = transport(path, { handoffRetries: 0 });
    await expect(
      t.send({ id: 'm-1', moduleName: 'm', body: new Uint8Array(1 << 20) }, never),
    ).rejects.toThrow(/on 1 hand-offs/);
  });

  it('an id agentd would refuse is rejected before any connection', async () => {
    const path = join(tempDir(), 'queue-sync');
    const server = await rawServer(path, (socket) => socket.end(Buffer.of(1)));
    const t = transport(path);
    for (const id of ['m 1', 'm-1\r\nX: y', `m-${'1'.repeat(256)}`, 'm-abc', '42']) {
      await expect(t.send({ id, moduleName: 'm', body: bodyOf(1) }, never)).rejects.toThrow(
        /is not <module>-<decimal>/,
      );
    }
    expect(server.connections).toHaveLength(0);
  });

  it('isReachable: connect and close', async () => {
    const agentd = await intake();
    const t = transport(agentd.socketPath);
    expect(await t.isReachable()).toBe(true);
    await agentd.close();
    expect(await t.isReachable()).toBe(false);
  });

  it('rejects the constructor options out of range', () => {
    expect(() => new QueueSyncTransport({} as never)).toThrow(TypeError);
    expect(() => new QueueSyncTransport({ socketPath: `/${'x'.repeat(120)}` })).toThrow(RangeError);
    expect(() => new QueueSyncTransport({ socketPath: '/s', handoffRetries: -1 })).toThrow(
      RangeError,
    );
    expect(() => new QueueSyncTransport({ socketPath: '/s', ioTimeoutMs: 0 })).toThrow(RangeError);
    expect(() => new QueueSyncTransport({ socketPath: '/s', resultTimeoutMs: 2 ** 31 })).toThrow(
      RangeError,
    );
  });
});

describe('QueueSyncTransport: the result', () => {
  it('a result module waits for receiveResult; a result during the hand-off is kept for it', async () => {
    const agentd = await intake();
    const t = transport(agentd.socketPath);
    const sent = t.send({ id: 'sca-77', moduleName: 'sca', body: bodyOf(1) }, never);
    await until(() => t.pendingCount === 1);
    expect(t.receiveResult({ moduleName: 'sca', sessionNumber: '78', status: 200, body: '' })).toBe(
      false,
    );
    expect(t.receiveResult({ moduleName: 'fim', sessionNumber: '77', status: 200, body: '' })).toBe(
      false,
    );
    expect(
      t.receiveResult({ moduleName: 'sca', sessionNumber: '77', status: 409, body: '{"x":1}' }),
    ).toBe(true);
    expect(await sent).toEqual({ status: 409, body: '{"x":1}' });
    expect(t.pendingCount).toBe(0);
  });

  it('status 0 (agentd got no HTTP answer) rejects, so the protocol retries', async () => {
    const agentd = await intake();
    const t = transport(agentd.socketPath);
    const sent = t.send({ id: 'fim-3', moduleName: 'fim', body: bodyOf(1) }, never);
    await until(() => t.pendingCount === 1);
    t.receiveResult({ moduleName: 'fim', sessionNumber: '3', status: 0, body: '' });
    await expect(sent).rejects.toThrow(/no HTTP answer .*status 0/);
  });

  it('no result within resultTimeoutMs rejects', async () => {
    const agentd = await intake();
    const t = transport(agentd.socketPath, { resultTimeoutMs: 50 });
    await expect(
      t.send({ id: 'syscollector-1', moduleName: 'syscollector', body: bodyOf(1) }, never),
    ).rejects.toThrow(/no result from agentd within 50 ms/);
    expect(t.pendingCount).toBe(0);
  });

  it('abort drops the wait at once; a later result is stale', async () => {
    const agentd = await intake();
    const t = transport(agentd.socketPath);
    const controller = new AbortController();
    const sent = t.send({ id: 'sca-5', moduleName: 'sca', body: bodyOf(1) }, controller.signal);
    await until(() => agentd.stats.accepted === 1);
    controller.abort(new Error('stop now'));
    await expect(sent).rejects.toThrow('stop now');
    expect(t.pendingCount).toBe(0);
    expect(t.receiveResult({ moduleName: 'sca', sessionNumber: '5', status: 200, body: '' })).toBe(
      false,
    );
  });

  it('close() rejects what is under way and refuses later sends', async () => {
    const agentd = await intake();
    const t = transport(agentd.socketPath);
    const sent = t.send({ id: 'sca-5', moduleName: 'sca', body: bodyOf(1) }, never);
    await until(() => agentd.stats.accepted === 1);
    t.close();
    await expect(sent).rejects.toThrow(/closed/);
    await expect(
      t.send({ id: 'sca-6', moduleName: 'sca', body: bodyOf(1) }, never),
    ).rejects.toThrow(/closed/);
  });

  it('expectsResult overrides the module list', async () => {
    const agentd = await intake();
    const never200 = transport(agentd.socketPath, { expectsResult: false });
    expect(await never200.send({ id: 'fim-1', moduleName: 'fim', body: bodyOf(1) }, never)).toEqual(
      AGENTD_ACCEPTED_ANSWER,
    );
    const waits = transport(agentd.socketPath, { expectsResult: (m) => m === 'custom' });
    const sent = waits.send({ id: 'custom-2', moduleName: 'custom', body: bodyOf(1) }, never);
    await until(() => agentd.stats.accepted === 2);
    waits.receiveResult({ moduleName: 'custom', sessionNumber: '2', status: 201, body: '' });
    expect(await sent).toEqual({ status: 201 });
  });
});

describe('AgentdIntake: the frame checks', () => {
  it('reassembles a frame split across reads at awkward places', async () => {
    const agentd = await intake();
    const frame = wzsy('custom-42', bodyOf(5, 6, 7, 8));
    expect(await answerTo(agentd.socketPath, frame, [1, 3, 5, 9, 14, 20, 27, 28])).toBe(1);
    expect(agentd.sessions).toMatchObject([{ id: 'custom-42', moduleName: 'custom' }]);
    expect([...(agentd.sessions[0]?.body ?? [])]).toEqual([5, 6, 7, 8]);
  });

  it('byte by byte', async () => {
    const agentd = await intake();
    const frame = wzsy('a.b_c-1', bodyOf(1, 2));
    expect(
      await answerTo(
        agentd.socketPath,
        frame,
        Array.from({ length: frame.length - 1 }, (_, i) => i + 1),
      ),
    ).toBe(1);
    expect(agentd.stats.accepted).toBe(1);
  });

  it.each([
    ['bad magic', Buffer.concat([Buffer.from('WZSX'), wzsy('m-1', bodyOf(1)).subarray(4)])],
    ['id length 0', wzsy('', bodyOf(1))],
    ['id length over 256 (announced)', wzsy('m-1', bodyOf(1), 257)],
    ['id of 257 bytes', wzsy(`m-${'1'.repeat(255)}`, bodyOf(1))],
    ['a control byte in the id', wzsy('m-1\n', bodyOf(1))],
    ['a body over maxBodyBytes (announced, not sent)', wzsy('m-1', new Uint8Array(), 3, 17n)],
    ['a body over u64/2', wzsy('m-1', new Uint8Array(), 3, 2n ** 63n)],
  ])('refuses %s with 0 and closes', async (_name, frame) => {
    const agentd = await intake({ maxBodyBytes: 16 });
    expect(await answerTo(agentd.socketPath, frame)).toBe(0);
    expect(agentd.stats).toMatchObject({ malformed: 1, accepted: 0 });
  });

  it('takes a body of exactly maxBodyBytes', async () => {
    const agentd = await intake({ maxBodyBytes: 16 });
    expect(await answerTo(agentd.socketPath, wzsy('m-1', new Uint8Array(16)))).toBe(1);
  });

  it('QueueSyncTransport: a session over the intake limit is refused on every hand-off', async () => {
    const agentd = await intake({ maxBodyBytes: 16 });
    const t = transport(agentd.socketPath, { handoffRetries: 1 });
    await expect(
      t.send({ id: 'custom-1', moduleName: 'custom', body: new Uint8Array(17) }, never),
    ).rejects.toThrow(/on 2 hand-offs .*refused/);
    expect(agentd.stats.malformed).toBe(2);
  });

  it('a producer that disconnects mid-frame: nothing taken, nothing answered', async () => {
    const agentd = await intake();
    const socket = await connectUnix(agentd.socketPath);
    await write(socket, wzsy('custom-1', bodyOf(1, 2, 3, 4)).subarray(0, 20));
    socket.destroy();
    await closed(socket);
    await until(() => agentd.stats.truncated === 1);
    expect(agentd.stats).toMatchObject({ accepted: 0, malformed: 0 });
    expect(agentd.sessions).toEqual([]);
  });

  it('a producer quiet past idleTimeoutMs mid-frame is dropped', async () => {
    const agentd = await intake({ idleTimeoutMs: 50 });
    const socket = await connectUnix(agentd.socketPath);
    cleanup.push(() => {
      socket.destroy();
    });
    await write(socket, wzsy('custom-1', bodyOf(1, 2)).subarray(0, 10));
    await closed(socket);
    await until(() => agentd.stats.truncated === 1);
  });
});
