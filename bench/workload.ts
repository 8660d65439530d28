// The fixed workloads of the benchmark suite, shared by the main runner and its child process.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ByteBuffer } from 'flatbuffers';
import {
  type AgentSyncProtocol,
  type Change,
  type ChangeOperation,
  Mode,
  type MQueueTransport,
  Operation,
  type SessionAnswer,
  type SessionRequest,
  type SessionTransport,
} from '../src/index.js';
import {
  decodeAgentMessage,
  MessageEncoder,
  MessageType,
  Status,
  verifyMessage,
} from '../src/wire/index.js';
import { FullSession } from '../src/wire-5/generated/wazuh/sync-schema/full-session.js';
import { Message } from '../src/wire-5/generated/wazuh/sync-schema/message.js';
import { SyncData } from '../src/wire-5/generated/wazuh/sync-schema/sync-data.js';

export const INDEX = 'wazuh-states-inventory-packages';

/** A ~300-byte WCS-style package document; distinct per `i` and `rev`. */
export function documentOf(i: number, rev = 0): string {
  return JSON.stringify({
    package: {
      name: `libbench-${i}`,
      version: `${1 + (i % 9)}.${rev}.${i % 97}-1`,
      architecture: 'amd64',
      type: 'deb',
      size: 4096 + (i % 1000),
      vendor: 'Debian Developers <debian-devel@lists.debian.org>',
      description: 'benchmark package for agent-sync-protocol',
    },
    checksum: { hash: { sha1: (i * 2654435761 + rev).toString(16).padStart(40, '0').slice(-40) } },
  });
}

export function changes(
  from: number,
  count: number,
  operation: ChangeOperation = Operation.Create,
  rev = 0,
): Change[] {
  return Array.from({ length: count }, (_, k) => ({
    id: `pkg-${from + k}`,
    operation,
    index: INDEX,
    data: documentOf(from + k, rev),
  }));
}

/** A fresh directory, removed by the returned function. */
export function scratch(): { dir: string; dispose: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'asp-bench-'));
  return { dir, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * A manager stand-in that acknowledges sessions and counts data without
 * keeping it, as a remote manager would look from the agent's process: used
 * where the agent's own memory or time is measured. It answers the agent's
 * probe End (before any data) with a ReqRet for every seq, as a manager does.
 */
export class AckingTransport implements MQueueTransport {
  received = 0;
  private readonly encoder = new MessageEncoder();
  private listener: ((message: Uint8Array) => void) | undefined;
  private session = 1n;
  private size = 0n;
  private sessionData = 0;

  start(): void {}

  send(message: Uint8Array): void {
    const type = verifyMessage(message);
    if (type === MessageType.Start) {
      const start = decodeAgentMessage(message);
      this.size = start?.type === 'Start' ? start.size : 0n;
      this.sessionData = 0;
      this.session++;
      this.answer(this.encoder.startAck(Status.Ok, this.session));
    } else if (type === MessageType.End) {
      this.answer(
        this.sessionData === 0 && this.size > 0n
          ? this.encoder.reqRet(this.session, [{ begin: 0n, end: this.size - 1n }])
          : this.encoder.endAck(Status.Ok, this.session),
      );
    } else if (type === MessageType.DataValue) {
      this.received++;
      this.sessionData++;
    }
  }

  onResponse(listener: (message: Uint8Array) => void): void {
    this.listener = listener;
  }

  private answer(bytes: Uint8Array): void {
    const copy = bytes.slice();
    setImmediate(() => this.listener?.(copy));
  }
}

/**
 * The Wazuh 5.0 counterpart of {@link AckingTransport}: answers every session 200 and counts
 * its items without keeping anything, so only the agent's own work and memory are measured.
 */
export class AcceptingSessionTransport implements SessionTransport {
  received = 0;
  sessions = 0;
  bytes = 0;

  async send(session: SessionRequest): Promise<SessionAnswer> {
    const message = Message.getRootAsMessage(new ByteBuffer(session.body));
    const payload = message.content(new FullSession())?.payload(new SyncData()) as SyncData | null;
    this.received += payload?.valuesLength() ?? 0;
    this.sessions++;
    this.bytes += session.body.length;
    return { status: 200 };
  }
}

/** The Wazuh 5.0 options the benchmarks use (the mock manager's default cluster name). */
export const FULL_SESSION = {
  wire: 'fullSession',
  clusterName: 'wazuh',
  agentInfo: { id: '001' },
} as const;

/**
 * Delta syncs until the queue is empty: one call sends at most `maxSessions` (10) sessions of
 * at most 5 MiB and leaves the rest queued, as the reference agent does. Returns the calls made.
 */
export async function deltaUntilEmpty(agent: AgentSyncProtocol): Promise<number> {
  let calls = 0;
  do {
    const result = await agent.synchronizeModule(Mode.Delta);
    calls++;
    if (!result.ok) throw new Error(`5.0 Delta failed: ${JSON.stringify(result)}`);
  } while (agent.pendingCount > 0);
  return calls;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export function seconds(since: number): number {
  return (performance.now() - since) / 1000;
}
