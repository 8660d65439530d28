import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import type { MQueueTransport } from '../src/interfaces/transport.js';
import { decodeAgentMessage, MessageEncoder } from '../src/wire/index.js';
import type { AgentMessage } from '../src/wire/types.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

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
    return this.inner.send(message, moduleName);
  }

  onResponse(listener: (message: Uint8Array) => void): void {
    this.inner.onResponse?.(listener);
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

export function doc(id: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ id, checksum: { hash: { sha1: `sha-${id}` } }, ...extra });
}
