// Hostile responses fed to a RUNNING sync through parseResponseBuffer, at each phase (waiting
// for StartAck, during data, waiting for EndAck): huge claimed vector lengths, self-referencing
// and out-of-range offsets (every aligned word and every vtable entry of real responses set to
// boundary values), unknown and swapped union tags, and amplification buffers (one Pair table
// shared by up to ~900,000 vector slots). Each call must return in bounded time, never throw,
// and never change the sync unless the bytes are a valid answer for its session and phase.
// test/wire/fuzz.test.ts and test/protocol/hostile-responses.test.ts fuzz at random; this file
// targets the structure.
import { Builder, ByteBuffer } from 'flatbuffers';
import { describe, expect, it } from 'vitest';
import { AgentSyncProtocol } from '../../src/agent-sync-protocol.js';
import { Mode } from '../../src/enums/mode.js';
import { Operation } from '../../src/enums/operation.js';
import type { MQueueTransport } from '../../src/interfaces/transport.js';
import { Message, Pair, ReqRet } from '../../src/wire/generated/inventorySync_generated.js';
import {
  decodeAgentMessage,
  decodeManagerResponse,
  MessageEncoder,
  MessageType,
  Status,
} from '../../src/wire/index.js';
import type { ManagerResponse } from '../../src/wire/types.js';
import { show, sleep } from './support.js';

const SESSION = 0x5eed_0000_0000_0042n;
const OTHER = SESSION + 1n;
const ITEMS = 12;
const MAX_U64 = 2n ** 64n - 1n;

type Phase = 'start' | 'data' | 'end';

/**
 * A manager that answers only when the test says so: it holds StartAck and EndAck until
 * released, so the test can feed bytes while the sync waits in each phase.
 */
class HeldManager implements MQueueTransport {
  readonly encoder = new MessageEncoder();
  readonly sent = { Start: 0, DataValue: 0, End: 0, other: 0 };
  releaseStart: (() => void) | undefined;
  releaseEnd: (() => void) | undefined;
  private listener: ((message: Uint8Array) => void) | undefined;

  start(): void {}

  send(bytes: Uint8Array): void {
    const message = decodeAgentMessage(bytes);
    if (message?.type === 'Start') {
      this.sent.Start++;
      this.releaseStart = () => this.reply(this.encoder.startAck(Status.Ok, SESSION));
    } else if (message?.type === 'DataValue') {
      this.sent.DataValue++;
    } else if (message?.type === 'End') {
      this.sent.End++;
      // The probe End, before any data, is answered at once, as a manager does: every seq.
      if (this.sent.DataValue === 0) {
        this.reply(this.encoder.reqRet(SESSION, [{ begin: 0n, end: BigInt(ITEMS - 1) }]));
      } else {
        this.releaseEnd = () => this.reply(this.encoder.endAck(Status.Ok, SESSION));
      }
    } else {
      this.sent.other++;
    }
  }

  onResponse(listener: (message: Uint8Array) => void): void {
    this.listener = listener;
  }

  reply(bytes: Uint8Array): void {
    const copy = bytes.slice();
    setImmediate(() => this.listener?.(copy));
  }
}

/** Would the driver act on this decoded response in `phase`? */
function acceptable(response: ManagerResponse, phase: Phase): boolean {
  if (phase === 'start') return response.type === 'StartAck';
  // From the probe on, the End is out: EndAck and ReqRet of the session count, data phase too.
  return response.type !== 'StartAck' && response.session === SESSION;
}

// ---- the inputs ---------------------------------------------------------------------------------

const e = new MessageEncoder();

function seeds(): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const session of [SESSION, OTHER]) {
    out.push(e.startAck(Status.Ok, session).slice());
    out.push(e.endAck(Status.Ok, session).slice());
    out.push(e.endAck(Status.Error, session).slice());
    out.push(e.reqRet(session, [{ begin: 0n, end: 3n }]).slice());
    out.push(
      e
        .reqRet(session, [
          { begin: 0n, end: 0n },
          { begin: 5n, end: MAX_U64 },
          { begin: 9n, end: 2n },
        ])
        .slice(),
    );
  }
  return out;
}

const u32 = (bytes: Uint8Array, at: number, value: number) =>
  new DataView(bytes.buffer, bytes.byteOffset).setUint32(at, value >>> 0, true);
const u16 = (bytes: Uint8Array, at: number, value: number) =>
  new DataView(bytes.buffer, bytes.byteOffset).setUint16(at, value & 0xffff, true);

/** Where the seq vector's length word of a ReqRet buffer lies. */
function seqLengthAt(bytes: Uint8Array): number {
  const message = Message.getRootAsMessage(new ByteBuffer(bytes));
  const reqRet = message.content(new ReqRet()) as ReqRet;
  const bb = reqRet.bb as ByteBuffer;
  const field = bb.__offset(reqRet.bb_pos, 4);
  return bb.__vector(reqRet.bb_pos + field) - 4;
}

/** Where the Message's content_type byte lies. */
function unionTagAt(bytes: Uint8Array): number {
  const message = Message.getRootAsMessage(new ByteBuffer(bytes));
  const bb = message.bb as ByteBuffer;
  return message.bb_pos + bb.__offset(message.bb_pos, 4);
}

/** Every ReqRet seed with its vector length claiming far more than the buffer holds. */
function hugeLengths(all: Uint8Array[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const seed of all) {
    if (decodeManagerResponse(seed)?.type !== 'ReqRet') continue;
    const at = seqLengthAt(seed);
    for (const n of [
      0xffff_ffff,
      0x8000_0000,
      0x7fff_ffff,
      0x4000_0000,
      0x3fff_ffff,
      0x1fff_ffff,
      seed.length,
      Math.ceil(seed.length / 4),
      1_000_000,
    ]) {
      const bytes = seed.slice();
      u32(bytes, at, n);
      out.push(bytes);
    }
  }
  return out;
}

/**
 * Offsets set to boundary values: every 4-aligned word (uoffsets, soffsets, lengths) and every
 * 2-aligned halfword (vtable sizes and field offsets). Includes offsets to the word itself
 * (soffset 0: a table that is its own vtable), to the previous word, past the end, and the
 * values around 2^15, 2^31 and 2^32.
 */
function offsetMutations(all: Uint8Array[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const seed of all) {
    const words = [0, 1, 2, 3, 4, -4, -8, seed.length, seed.length - 4, 0x7fff_ffff, 0x8000_0000];
    for (let at = 0; at + 4 <= seed.length; at += 4) {
      for (const value of [...words, -at, seed.length - at]) {
        const bytes = seed.slice();
        u32(bytes, at, value);
        out.push(bytes);
      }
    }
    const halves = [0, 1, 2, 3, 4, 6, 0x7fff, 0x8000, 0xffff, seed.length];
    for (let at = 0; at + 2 <= seed.length; at += 2) {
      for (const value of halves) {
        const bytes = seed.slice();
        u16(bytes, at, value);
        out.push(bytes);
      }
    }
  }
  return out;
}

/** Every union tag 0..255 on every seed: unknown tags, NONE, and known tags on the wrong table. */
function unionTags(all: Uint8Array[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const seed of all) {
    const at = unionTagAt(seed);
    for (let tag = 0; tag < 256; tag++) {
      const bytes = seed.slice();
      bytes[at] = tag;
      out.push(bytes);
    }
  }
  return out;
}

/**
 * A ReqRet whose `count` vector slots all point at ONE Pair table: a small buffer that decodes
 * into `count` ranges. Valid FlatBuffers (shared tables are legal).
 */
function amplified(session: bigint, count: number, begin = 0n, end = MAX_U64): Uint8Array {
  const b = new Builder(1024 + count * 4);
  Pair.startPair(b);
  Pair.addBegin(b, begin);
  Pair.addEnd(b, end);
  const pair = Pair.endPair(b);
  ReqRet.startSeqVector(b, count);
  for (let i = 0; i < count; i++) b.addOffset(pair);
  const seq = b.endVector();
  ReqRet.startReqRet(b);
  ReqRet.addSeq(b, seq);
  ReqRet.addSession(b, session);
  const content = ReqRet.endReqRet(b);
  Message.startMessage(b);
  Message.addContentType(b, MessageType.ReqRet);
  Message.addContent(b, content);
  b.finish(Message.endMessage(b));
  return b.asUint8Array().slice();
}

// ---- the tests ----------------------------------------------------------------------------------

/**
 * CPU time (user + system, ms) this process spends in `call`: unlike wall time, other processes
 * keeping the cores busy do not stretch it, so a bound on it speaks of the code alone.
 */
function cpuMs(call: () => void): number {
  const before = process.cpuUsage();
  call();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000;
}

interface Fed {
  inputs: number;
  rejected: number;
  ignored: number;
  skipped: number;
  maxMs: number;
  totalMs: number;
}

/** Feed every input the sync must not act on; skip (and count) valid answers it would act on. */
function feed(agent: AgentSyncProtocol, inputs: Uint8Array[], phase: Phase, fed: Fed): void {
  for (const bytes of inputs) {
    const decoded = decodeManagerResponse(bytes);
    if (decoded !== null && acceptable(decoded, phase)) {
      fed.skipped++;
      continue;
    }
    let accepted = false;
    const ms = cpuMs(() => {
      accepted = agent.parseResponseBuffer(bytes);
    });
    fed.inputs++;
    fed.maxMs = Math.max(fed.maxMs, ms);
    fed.totalMs += ms;
    expect(accepted).toBe(decoded !== null);
    if (accepted) fed.ignored++;
    else fed.rejected++;
  }
}

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 5000 && !condition(); i++) await sleep(1);
  expect(condition()).toBe(true);
}

describe('hostile responses to a running sync', () => {
  it('huge lengths, boundary offsets, unknown tags and amplification: rejected or ignored, quickly', async () => {
    const all = seeds();
    const inputs = [
      ...hugeLengths(all),
      ...offsetMutations(all),
      ...unionTags(all),
      amplified(OTHER, 16_000),
      amplified(OTHER, 900_000),
      amplified(SESSION, 16_000, 0n, 0n),
    ];
    const manager = new HeldManager();
    const agent = new AgentSyncProtocol({
      moduleName: 'fim',
      dbPath: ':memory:',
      transport: manager,
      agentInfo: { id: '001' },
    });
    for (let i = 0; i < ITEMS; i++) {
      agent.persistDifference(`f${i}`, Operation.Create, 'idx', JSON.stringify({ i }));
    }
    let settled = false;
    const running = agent.synchronizeModule(Mode.Delta, { maxEps: 40, timeoutMs: 30_000 });
    running.then(() => {
      settled = true;
    });
    const fed: Fed = { inputs: 0, rejected: 0, ignored: 0, skipped: 0, maxMs: 0, totalMs: 0 };
    const started = Date.now();

    await until(() => manager.releaseStart !== undefined);
    feed(agent, inputs, 'start', fed);
    await sleep(5);
    expect(manager.sent).toEqual({ Start: 1, DataValue: 0, End: 0, other: 0 });
    (manager.releaseStart as () => void)();

    await until(() => manager.sent.DataValue > 0);
    feed(agent, inputs, 'data', fed);

    await until(() => manager.releaseEnd !== undefined);
    feed(agent, inputs, 'end', fed);
    await sleep(20);
    expect(settled).toBe(false);
    expect(manager.sent).toEqual({ Start: 1, DataValue: ITEMS, End: 2, other: 0 });
    (manager.releaseEnd as () => void)();

    const result = await running;
    console.log(
      `hostile: ${fed.inputs} crafted inputs fed to a running sync (${fed.rejected} rejected, ` +
        `${fed.ignored} valid but not for its session or phase, ${fed.skipped} skipped as valid ` +
        `answers), slowest call ${fed.maxMs.toFixed(1)} ms of CPU, all calls ` +
        `${fed.totalMs.toFixed(0)} ms of CPU, ${Date.now() - started} ms in all`,
    );
    expect(result, show(result)).toEqual({
      ok: true,
      session: SESSION,
      sent: ITEMS,
      retransmitted: 0,
    });
    expect(manager.sent).toEqual({ Start: 1, DataValue: ITEMS, End: 2, other: 0 });
    // Loose bound: no single call may take seconds of CPU (the largest input is ~3.6 MB).
    expect(fed.maxMs).toBeLessThan(5000);
    expect(fed.rejected).toBeGreaterThan(10_000);
    await agent.close();
  }, 120_000);

  it('a valid ReqRet for its session whose ~900,000 ranges share one Pair resends each item once', async () => {
    const manager = new HeldManager();
    const agent = new AgentSyncProtocol({
      moduleName: 'fim',
      dbPath: ':memory:',
      transport: manager,
      agentInfo: { id: '001' },
    });
    for (let i = 0; i < ITEMS; i++) {
      agent.persistDifference(`f${i}`, Operation.Create, 'idx', JSON.stringify({ i }));
    }
    const running = agent.synchronizeModule(Mode.Delta, { timeoutMs: 30_000 });
    await until(() => manager.releaseStart !== undefined);
    (manager.releaseStart as () => void)();
    await until(() => manager.releaseEnd !== undefined);
    const bytes = amplified(SESSION, 900_000);
    let accepted = false;
    const ms = cpuMs(() => {
      accepted = agent.parseResponseBuffer(bytes);
    });
    expect(accepted).toBe(true);
    await until(() => manager.sent.DataValue === 2 * ITEMS);
    (manager.releaseEnd as () => void)();
    const result = await running;
    console.log(
      `hostile: a ${bytes.length}-byte ReqRet of 900000 ranges took ${ms.toFixed(0)} ms of CPU to take in`,
    );
    expect(result).toEqual({ ok: true, session: SESSION, sent: ITEMS, retransmitted: ITEMS });
    expect(manager.sent.End).toBe(2);
    expect(ms).toBeLessThan(10_000);
    await agent.close();
  }, 60_000);

  it('a manager that answers every End and every resend with a ReqRet: fails after maxReqRetRounds', async () => {
    // test/protocol/session.test.ts covers it with maxReqRetRounds: 5; this is the default (16),
    // with a ReqRet for End and for each resent item, and with End re-sent after timeouts.
    let listener: ((m: Uint8Array) => void) | undefined;
    const counts = { Start: 0, End: 0, DataValue: 0, ReqRet: 0 };
    const encoder = new MessageEncoder();
    const answer = (bytes: Uint8Array) => {
      const copy = bytes.slice();
      setImmediate(() => listener?.(copy));
    };
    const transport: MQueueTransport = {
      start() {},
      send(bytes) {
        const m = decodeAgentMessage(bytes);
        if (m?.type === 'Start') {
          counts.Start++;
          answer(encoder.startAck(Status.Ok, SESSION));
        }
        if (m?.type === 'DataValue') counts.DataValue++;
        // The probe End (before any data) is answered as a manager does; every later End, and
        // every resend of seq 1, with "send seq 1 again".
        if (m?.type === 'End' && counts.DataValue === 0) {
          counts.End++;
          answer(encoder.reqRet(SESSION, [{ begin: 0n, end: 2n }]));
        } else if (
          m?.type === 'End' ||
          (m?.type === 'DataValue' && counts.DataValue > 3 && m.seq === 1n)
        ) {
          if (m.type === 'End') counts.End++;
          counts.ReqRet++;
          answer(encoder.reqRet(SESSION, [{ begin: 1n, end: 1n }]));
        }
      },
      onResponse(l) {
        listener = l;
      },
    };
    const agent = new AgentSyncProtocol({
      moduleName: 'fim',
      dbPath: ':memory:',
      transport,
      agentInfo: { id: '001' },
    });
    for (let i = 0; i < 3; i++) agent.persistDifference(`f${i}`, Operation.Create, 'i', '{"v":1}');
    const result = await agent.synchronizeModule(Mode.Delta, { timeoutMs: 10_000 });
    expect(result).toMatchObject({ ok: false, reason: 'retransmit-invalid' });
    expect((result as { message: string }).message).toMatch(/more than 16 times/);
    expect(counts.DataValue).toBe(3 + 16); // 16 rounds answered, the 17th refused
    // No timeout was needed to stop it: a timed-out wait would have sent Start or End again.
    expect(counts.Start).toBe(1);
    expect(counts.End).toBe(2); // the probe's and the one after the data
    expect(agent.pendingCount).toBe(3);
    await agent.close();
  });
});
