// The `WZSY` frame a module hands a whole 5.0 session to the agent daemon with, on the STREAM
// socket `<home>/queue/sockets/queue-sync`, and the one status byte agentd answers. Layout and
// bounds as the reference's single definition (wazuh/wazuh f838614611,
// src/shared_modules/sync_protocol/include/sync_session_wire.hpp), writer as
// src/sync_socket_transport.cpp, reader as src/client-agent/https_client/src/syncFrame.cpp.
import { MAX_SESSION_ID_BYTES, SESSION_ID_CHARSET } from '../session/full-session-driver.js';

/** The frame's first four bytes. */
export const SYNC_FRAME_MAGIC = Uint8Array.of(0x57, 0x5a, 0x53, 0x59); // "WZSY"

/** Largest body agentd's intake takes: 512 MiB (SYNC_FRAME_MAX_BODY). */
export const SYNC_FRAME_MAX_BODY_BYTES = 512 * 1024 * 1024;

/** The status byte of a session agentd took (it owns the session now). */
export const SYNC_FRAME_ACCEPTED = 1;
/** The status byte of a session agentd did not take (it is still the module's). */
export const SYNC_FRAME_REFUSED = 0;

const HEADER_FIXED_BYTES = 4 + 4 + 8;

/** Whether `id` is a session id agentd takes: `[0-9A-Za-z._-]`, 1 to 256 bytes (isValidSessionId). */
export function isValidSyncSessionId(id: string): boolean {
  return id.length <= MAX_SESSION_ID_BYTES && SESSION_ID_CHARSET.test(id);
}

/**
 * The frame's header, `"WZSY" | u32 LE id length | id | u64 LE body length`; the body follows it
 * as is. The caller checks the id ({@link isValidSyncSessionId}) first: it is ASCII then.
 */
export function encodeSyncFrameHeader(id: string, bodyLength: number): Buffer {
  const header = Buffer.alloc(HEADER_FIXED_BYTES + id.length);
  header.set(SYNC_FRAME_MAGIC, 0);
  header.writeUInt32LE(id.length, 4);
  header.write(id, 8, 'latin1');
  header.writeBigUInt64LE(BigInt(bodyLength), 8 + id.length);
  return header;
}

/** What a {@link SyncFrameReader} has made of the bytes so far. */
export type SyncFrameState =
  | { kind: 'more' }
  | { kind: 'frame'; id: string; body: Buffer }
  | { kind: 'malformed'; why: string };

/**
 * Reads one `WZSY` frame from a stream, whatever the reads' boundaries, checking each field as
 * soon as it is complete, as agentd's intake does (syncFrame.cpp: readSyncSessionFrame): bad
 * magic, an id length of 0 or over 256, an id outside the charset, or a body over `maxBodyBytes`
 * make the frame malformed before its body is buffered. Holds at most one frame.
 */
export class SyncFrameReader {
  readonly #maxBodyBytes: number;
  #chunks: Buffer[] = [];
  #buffered = 0;
  #id: string | undefined;
  #bodyLength = -1;
  #done = false;

  /** `maxBodyBytes`: largest body taken (default 512 MiB, as agentd). */
  constructor(maxBodyBytes = SYNC_FRAME_MAX_BODY_BYTES) {
    this.#maxBodyBytes = maxBodyBytes;
  }

  /** Bytes received and not yet part of a finished frame. */
  get pendingBytes(): number {
    return this.#buffered;
  }

  /**
   * Feed bytes. 'frame' once the frame is complete (bytes after it are ignored: a connection
   * carries one session), 'malformed' as soon as a field is out of contract, else 'more'.
   */
  push(chunk: Buffer): SyncFrameState {
    if (this.#done) return { kind: 'more' };
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    const state = this.#advance();
    if (state.kind !== 'more') {
      this.#done = true;
      this.#chunks = [];
      this.#buffered = 0;
    }
    return state;
  }

  #advance(): SyncFrameState {
    if (this.#id === undefined) {
      if (this.#buffered < 8) return this.#checkMagicSoFar();
      const head = this.#peek(8);
      if (!head.subarray(0, 4).equals(SYNC_FRAME_MAGIC)) return malformed('bad magic');
      const idLength = head.readUInt32LE(4);
      if (idLength === 0 || idLength > MAX_SESSION_ID_BYTES) {
        return malformed(`session id length ${idLength} is not 1 to ${MAX_SESSION_ID_BYTES}`);
      }
      if (this.#buffered < 8 + idLength) return { kind: 'more' };
      const id = this.#take(8 + idLength)
        .subarray(8)
        .toString('latin1');
      if (!isValidSyncSessionId(id)) return malformed('session id outside [0-9A-Za-z._-]');
      this.#id = id;
    }
    if (this.#bodyLength < 0) {
      if (this.#buffered < 8) return { kind: 'more' };
      const length = this.#take(8).readBigUInt64LE(0);
      if (length > BigInt(this.#maxBodyBytes)) {
        return malformed(`body of ${length} bytes exceeds ${this.#maxBodyBytes}`);
      }
      this.#bodyLength = Number(length);
    }
    if (this.#buffered < this.#bodyLength) return { kind: 'more' };
    return { kind: 'frame', id: this.#id, body: Buffer.from(this.#take(this.#bodyLength)) };
  }

  /** A wrong magic is known from its first wrong byte. */
  #checkMagicSoFar(): SyncFrameState {
    const head = this.#peek(Math.min(this.#buffered, 4));
    for (let i = 0; i < head.length; i++) {
      if (head[i] !== SYNC_FRAME_MAGIC[i]) return malformed('bad magic');
    }
    return { kind: 'more' };
  }

  #peek(n: number): Buffer {
    if (this.#chunks.length > 1) this.#chunks = [Buffer.concat(this.#chunks)];
    return (this.#chunks[0] ?? Buffer.alloc(0)).subarray(0, n);
  }

  #take(n: number): Buffer {
    const all =
      this.#chunks.length === 1 ? (this.#chunks[0] as Buffer) : Buffer.concat(this.#chunks);
    this.#chunks = all.length > n ? [all.subarray(n)] : [];
    this.#buffered -= n;
    return all.subarray(0, n);
  }
}

function malformed(why: string): SyncFrameState {
  return { kind: 'malformed', why };
}
