import type { MessageType } from './generated/wazuh/sync-schema/message-type.js';
import type { Mode } from './generated/wazuh/sync-schema/mode.js';
import type { Operation } from './generated/wazuh/sync-schema/operation.js';
import type { Option } from './generated/wazuh/sync-schema/option.js';

/**
 * The Start table of a session, as the reference agent fills it
 * (`waitMetadataAndBuildStart` in wazuh/wazuh agent_sync_protocol.cpp): every
 * string and both string lists are always written, even when empty.
 */
export interface StartFields {
  /** The sending module; the manager answers 400 when it is empty. */
  module: string;
  mode: Mode;
  /**
   * The indices the session touches. The reference sends the sorted unique
   * indices of a Delta's values (not of its contexts), the cleaned indices of
   * a Cleans session as given, and the one index of a Check.
   */
  index: readonly string[];
  option: Option;
  architecture: string;
  hostname: string;
  osname: string;
  osplatform: string;
  ostype: string;
  osversion: string;
  agentversion: string;
  agentname: string;
  /** Numeric; the manager compares it, as an integer, with the authenticated agent id. */
  agentid: string;
  /** The reference never syncs without at least one group. */
  groups: readonly string[];
  /** Metadata and group syncs only (required there, refused elsewhere). */
  globalVersion?: bigint;
  /** Must be non-empty and equal the manager's cluster name. */
  clusterName: string;
  /** VDFirst/VDSync sessions only (required there and > 0, refused elsewhere). */
  feedOffset?: bigint;
}

/** One document for a SyncData payload. */
export interface DataValueInput {
  operation: Operation;
  id: string;
  index: string;
  /** 0 (the default) = unversioned; > 0 asks the manager for external versioning. */
  version?: bigint;
  /** The JSON document; a string is written as its UTF-8 bytes. */
  data: Uint8Array | string;
}

/** Vulnerability-detection side data for a SyncData payload. */
export interface DataContextInput {
  id: string;
  index: string;
  /** A string is written as its UTF-8 bytes. */
  data: Uint8Array | string;
}

/**
 * The payload of a session to encode. Items come from iterables (arrays,
 * generators, cursors), consumed once each, so a session of many megabytes
 * is built item by item without an intermediate array.
 */
export type PayloadInput =
  | {
      type: 'SyncData';
      /** At least one: the manager refuses a SyncData without values. */
      values: Iterable<DataValueInput>;
      contexts?: Iterable<DataContextInput>;
    }
  | {
      type: 'Cleans';
      /** One DataClean per index, in this order; at least one. */
      indices: Iterable<string>;
    }
  | { type: 'ChecksumModule'; index: string; checksum: string };

/**
 * A decoded Start: what the manager reads. Absent strings read as '', absent
 * lists as [], absent numbers as 0, as the manager's accessors give them.
 */
export interface DecodedStart {
  module: string;
  mode: Mode;
  index: string[];
  option: Option;
  architecture: string;
  hostname: string;
  osname: string;
  osplatform: string;
  ostype: string;
  osversion: string;
  agentversion: string;
  agentname: string;
  agentid: string;
  groups: string[];
  globalVersion: bigint;
  clusterName: string;
  feedOffset: bigint;
}

export interface DecodedDataValue {
  operation: Operation;
  id: string;
  index: string;
  version: bigint;
  /** A view into the decoded buffer, not a copy. */
  data: Uint8Array;
}

export interface DecodedDataContext {
  id: string;
  index: string;
  /** A view into the decoded buffer, not a copy. */
  data: Uint8Array;
}

/**
 * Slots of a vector that point at one table (legal FlatBuffers, never built
 * by the reference) share one decoded object, which keeps a hostile buffer's
 * output proportional to its size. Treat decoded items as read-only.
 */
export interface DecodedSyncData {
  type: 'SyncData';
  values: DecodedDataValue[];
  contexts: DecodedDataContext[];
}

export interface DecodedCleans {
  type: 'Cleans';
  /** The index of each DataClean, in order. */
  indices: string[];
}

export interface DecodedChecksumModule {
  type: 'ChecksumModule';
  index: string;
  checksum: string;
}

export type DecodedPayload = DecodedSyncData | DecodedCleans | DecodedChecksumModule;

/** A decoded Message{FullSession}. */
export interface DecodedFullSession {
  start: DecodedStart;
  /** null: no payload (metadata and group syncs). */
  payload: DecodedPayload | null;
}

/**
 * Why a buffer did not decode:
 * - `malformed`: it fails verification (see verify.ts);
 * - `not-full-session`: a well-formed Message of another member (`type`);
 * - `missing-start`: a FullSession without its Start (the manager answers 400);
 * - `enum-out-of-range`: a mode, option or operation the schema does not declare.
 */
export type DecodeFailure =
  | { ok: false; error: 'malformed' }
  | { ok: false; error: 'not-full-session'; type: MessageType }
  | { ok: false; error: 'missing-start' }
  | { ok: false; error: 'enum-out-of-range'; field: 'mode' | 'option' | 'operation' };

export type DecodeResult = { ok: true; session: DecodedFullSession } | DecodeFailure;
