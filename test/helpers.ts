import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { AgentSyncProtocol } from '../src/agent-sync-protocol.js';
import type { LogFields } from '../src/interfaces/logger.js';
import type { SyncOptions } from '../src/interfaces/options.js';
import type { SessionTransport } from '../src/interfaces/session-transport.js';
import type { MQueueTransport } from '../src/interfaces/transport.js';
import {
  decodeAgentMessage,
  decodeManagerResponse,
  MessageEncoder,
  Status,
} from '../src/wire/index.js';
import type { AgentMessage, SeqRange } from '../src/wire/types.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/**
 * Steps to undo after each test of the file that calls this at its top level: awaited, the last
 * registered first, so a failing assertion leaks no socket, process or file into the next test.
 */
export function cleanupAfterEach(): Array<() => unknown> {
  const steps: Array<() => unknown> = [];
  afterEach(async () => {
    for (const step of steps.splice(0).reverse()) await step();
  });
  return steps;
}

/** A fresh directory removed after the test. */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'asp-test-'));
  dirs.push(dir);
  return dir;
}

export function dbFile(name = 'sync.db'): string {
  return join(tempDir(), name);
}

/** Wraps a transport and records every message the agent sends, decoded. */
export class RecordingTransport implements MQueueTransport {
  readonly sent: AgentMessage[] = [];
  /**
   * Both directions in the order they happened: `>Type` for a message the agent sent, `<Type`
   * for an answer handed to it. Tells where an answer landed without timing anything.
   */
  readonly timeline: string[] = [];
  starts = 0;

  constructor(readonly inner: MQueueTransport) {}

  start(): void | Promise<void> {
    this.starts++;
    return this.inner.start();
  }

  send(message: Uint8Array, moduleName: string): void | Promise<void> {
    const decoded = decodeAgentMessage(message);
    if (!decoded) throw new Error('the agent sent an invalid message');
    // Keep the fields, not the view: the agent reuses its buffer.
    this.sent.push(
      decoded.type === 'DataValue' ? { ...decoded, data: decoded.data.slice() } : decoded,
    );
    this.timeline.push(`>${decoded.type}`);
    return this.inner.send(message, moduleName);
  }

  onResponse(listener: (message: Uint8Array) => void): void {
    this.inner.onResponse?.((bytes) => {
      this.timeline.push(`<${decodeManagerResponse(bytes)?.type ?? 'invalid'}`);
      listener(bytes);
    });
  }

  count(type: AgentMessage['type']): number {
    return this.sent.filter((m) => m.type === type).length;
  }

  of<T extends AgentMessage['type']>(type: T): Extract<AgentMessage, { type: T }>[] {
    return this.sent.filter((m): m is Extract<AgentMessage, { type: T }> => m.type === type);
  }
}

/**
 * A transport whose "manager" is a test function: it sees each decoded
 * message and answers through `reply` with bytes built by `encoder`.
 */
export class ScriptedTransport implements MQueueTransport {
  readonly sent: AgentMessage[] = [];
  readonly encoder = new MessageEncoder();
  private listener: ((message: Uint8Array) => void) | undefined;

  constructor(
    private readonly script: (message: AgentMessage, transport: ScriptedTransport) => void,
  ) {}

  start(): void {}

  send(message: Uint8Array): void {
    const decoded = decodeAgentMessage(message);
    if (!decoded) throw new Error('the agent sent an invalid message');
    this.sent.push(
      decoded.type === 'DataValue' ? { ...decoded, data: decoded.data.slice() } : decoded,
    );
    this.script(decoded, this);
  }

  onResponse(listener: (message: Uint8Array) => void): void {
    this.listener = listener;
  }

  /** Answer later (next macrotask), as a real manager would. */
  reply(bytes: Uint8Array): void {
    const copy = bytes.slice();
    setImmediate(() => this.listener?.(copy));
  }

  count(type: AgentMessage['type']): number {
    return this.sent.filter((m) => m.type === type).length;
  }
}

export interface ScriptedManagerOptions {
  /** The session id every StartAck carries. */
  session?: bigint;
  /** Sees each message first; returning true skips the default answer to it. */
  answer?: (message: AgentMessage, transport: ScriptedTransport, session: bigint) => unknown;
  /** Once End and every seq are in (default: EndAck Ok). */
  complete?: (transport: ScriptedTransport, session: bigint) => void;
}

/**
 * A scripted manager that follows the protocol, one session at a time: StartAck Ok for a Start;
 * at End, a ReqRet for the seqs still missing (all of them for the agent's probe End, sent
 * before any data); `complete` once End and every seq are in.
 */
export function scriptedManager(options: ScriptedManagerOptions = {}): ScriptedTransport {
  const session = options.session ?? 0xfedcba9876543210n;
  const complete =
    options.complete ?? ((t: ScriptedTransport) => t.reply(t.encoder.endAck(Status.Ok, session)));
  let size = 0;
  const received = new Set<bigint>();
  let ended = false;
  let completed = false;
  const finish = (t: ScriptedTransport) => {
    completed = true;
    complete(t, session);
  };
  return new ScriptedTransport((m, t) => {
    if (options.answer?.(m, t, session) === true) return;
    if (m.type === 'Start') {
      size = Number(m.size);
      received.clear();
      ended = false;
      completed = false;
      t.reply(t.encoder.startAck(Status.Ok, session));
    } else if (m.type === 'DataValue' && m.session === session && m.seq < BigInt(size)) {
      received.add(m.seq);
      if (ended && !completed && received.size === size) finish(t);
    } else if (m.type === 'End' && m.session === session && !completed) {
      ended = true;
      if (received.size === size) {
        finish(t);
        return;
      }
      const ranges: SeqRange[] = [];
      for (let seq = 0n; seq < BigInt(size); seq++) {
        if (received.has(seq)) continue;
        const last = ranges.at(-1);
        if (last && last.end === seq - 1n) last.end = seq;
        else ranges.push({ begin: seq, end: seq });
      }
      t.reply(t.encoder.reqRet(session, ranges));
    }
  });
}

export function doc(id: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ id, checksum: { hash: { sha1: `sha-${id}` } }, ...extra });
}

/** A log line as {@link fullSessionAgent} records it. */
export interface LogRecord {
  message: string;
  fields?: LogFields;
}

/**
 * Module 'syscollector' of agent 001 on the 'fullSession' wire (cluster 'wazuh' unless told),
 * with no backoff and quick Check retries, logging into `logs`. The caller closes it.
 */
export function fullSessionAgent(
  transport: SessionTransport,
  options: {
    clusterName?: string;
    logs?: LogRecord[];
    syncDefaults?: Omit<SyncOptions, 'signal' | 'onProgress'>;
  } = {},
): AgentSyncProtocol {
  return new AgentSyncProtocol({
    moduleName: 'syscollector',
    dbPath: dbFile(),
    transport,
    wire: 'fullSession',
    clusterName: options.clusterName ?? 'wazuh',
    agentInfo: { id: '001', osPlatform: 'ubuntu' },
    logger: (_level, message, fields) =>
      options.logs?.push({ message, ...(fields ? { fields } : {}) }),
    syncDefaults: {
      timeoutMs: 5000,
      retries: 1,
      backoff: { minMs: 0 },
      checkAttempts: 2,
      checkRetryDelayMs: 1,
      ...options.syncDefaults,
    },
  });
}
