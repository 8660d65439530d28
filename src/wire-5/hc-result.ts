// agentd's report of a session's HTTP outcome, `HCRESULT:<session>:<status>:<body>`, as the
// Wazuh 5.0 agent builds it (wazuh/wazuh f838614611, src/client-agent/src/https_client_bridge.c:
// bridge_on_sync_response, `snprintf("HCRESULT:%s:%d:")` then the body verbatim) and reads it
// (src/shared_modules/sync_protocol/src/agent_sync_protocol.cpp: parseResponseBuffer, which
// splits at the first two colons only: the JSON body may hold colons of its own).
//
// Stricter than the reference reader, on purpose: it uses stoull/stoi, which also take leading
// blanks, a sign and trailing junk ("12abc"); here the session is 1 to 20 ASCII digits within a
// u64 and the status 1 to 3 digits, and anything else is not a result (null).

/** The bytes every result starts with. */
export const HC_RESULT_PREFIX = 'HCRESULT:';

/**
 * Longest result payload read, in bytes (prefix, numbers and body). A /stateful answer body is
 * a short JSON object; the agent's command sockets carry at most 64 KiB a message anyway.
 */
export const MAX_HC_RESULT_BYTES = 1 << 20;

/** One parsed result. */
export interface HcResult {
  /** The session number, canonical decimal (no leading zeros). */
  sessionNumber: string;
  /** The HTTP status, 0 to 999 (0: agentd got no HTTP answer). */
  status: number;
  /** The body, decoded as UTF-8 (invalid bytes replaced). */
  body: string;
}

const PREFIX = new TextEncoder().encode(HC_RESULT_PREFIX);
const COLON = 0x3a;
const MAX_U64 = 0xffff_ffff_ffff_ffffn;
const MAX_SESSION_DIGITS = 20;
const MAX_STATUS_DIGITS = 3;
const decoder = new TextDecoder('utf-8', { fatal: false });

/** Whether `bytes` start with `HCRESULT:` (well-formed or not). */
export function isHcResult(bytes: Uint8Array): boolean {
  if (bytes.length < PREFIX.length) return false;
  for (let i = 0; i < PREFIX.length; i++) if (bytes[i] !== PREFIX[i]) return false;
  return true;
}

/** Digits from `start` up to the next colon, at most `max` of them; the colon's index, or -1. */
function digitsUntilColon(bytes: Uint8Array, start: number, max: number): number {
  for (let i = start; i < bytes.length && i <= start + max; i++) {
    const byte = bytes[i] as number;
    if (byte === COLON) return i > start ? i : -1;
    if (byte < 0x30 || byte > 0x39) return -1;
  }
  return -1;
}

function ascii(bytes: Uint8Array, start: number, end: number): string {
  return String.fromCharCode(...bytes.subarray(start, end));
}

/**
 * Parse one result payload (the bytes after `<module>_sync `). Null for anything that is not a
 * well-formed result: no prefix, a missing colon, a non-decimal or out-of-range session or
 * status, or more than {@link MAX_HC_RESULT_BYTES}. Never throws; reads at most the payload's
 * first few dozen bytes before the body.
 */
export function parseHcResult(bytes: Uint8Array): HcResult | null {
  if (!(bytes instanceof Uint8Array) || bytes.length > MAX_HC_RESULT_BYTES) return null;
  if (!isHcResult(bytes)) return null;
  const sessionEnd = digitsUntilColon(bytes, PREFIX.length, MAX_SESSION_DIGITS);
  if (sessionEnd < 0) return null;
  const statusEnd = digitsUntilColon(bytes, sessionEnd + 1, MAX_STATUS_DIGITS);
  if (statusEnd < 0) return null;
  const session = BigInt(ascii(bytes, PREFIX.length, sessionEnd));
  if (session > MAX_U64) return null;
  return {
    sessionNumber: session.toString(),
    status: Number(ascii(bytes, sessionEnd + 1, statusEnd)),
    body: decoder.decode(bytes.subarray(statusEnd + 1)),
  };
}

/** The payload agentd writes for a session's outcome: `HCRESULT:<number>:<status>:<body>`. */
export function encodeHcResult(sessionNumber: string, status: number, body: string): Uint8Array {
  return new TextEncoder().encode(`${HC_RESULT_PREFIX}${sessionNumber}:${status}:${body}`);
}
