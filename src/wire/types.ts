import type { Mode as WireMode } from './generated/wazuh/sync-schema/mode.js';
import type { Operation as WireOperation } from './generated/wazuh/sync-schema/operation.js';
import type { Status } from './generated/wazuh/sync-schema/status.js';

/** An inclusive range of sequence numbers, as carried by ReqRet's `Pair`. */
export interface SeqRange {
  begin: bigint;
  end: bigint;
}

/** Fields of a Start message. Optional strings are left out of the buffer when undefined. */
export interface StartFields {
  mode: WireMode;
  size: bigint;
  index: readonly string[];
  first?: boolean;
  architecture?: string;
  hostname?: string;
  osname?: string;
  ostype?: string;
  osversion?: string;
  agentversion?: string;
  agentname?: string;
  agentid?: string;
  groups?: readonly string[];
  checksumMetadata?: string;
  globalVersion?: string;
}

export interface StartMessage extends StartFields {
  type: 'Start';
  first: boolean;
  index: string[];
  groups: string[];
}

export interface DataValueMessage {
  type: 'DataValue';
  seq: bigint;
  session: bigint;
  operation: WireOperation;
  id: string;
  index: string;
  version?: string;
  /** The document bytes (a view into the decoded buffer). */
  data: Uint8Array;
}

export interface DataCleanMessage {
  type: 'DataClean';
  seq: bigint;
  session: bigint;
  index: string;
}

export interface ChecksumModuleMessage {
  type: 'ChecksumModule';
  session: bigint;
  index: string;
  checksum: string;
}

export interface EndMessage {
  type: 'End';
  session: bigint;
}

export interface StartAckMessage {
  type: 'StartAck';
  status: Status;
  session: bigint;
}

export interface EndAckMessage {
  type: 'EndAck';
  status: Status;
  session: bigint;
}

export interface ReqRetMessage {
  type: 'ReqRet';
  session: bigint;
  ranges: SeqRange[];
}

/** Messages the agent sends. */
export type AgentMessage =
  | StartMessage
  | DataValueMessage
  | DataCleanMessage
  | ChecksumModuleMessage
  | EndMessage;

/** Messages the manager sends. */
export type ManagerResponse = StartAckMessage | EndAckMessage | ReqRetMessage;

export type DecodedMessage = AgentMessage | ManagerResponse;
