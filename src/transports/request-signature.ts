// The Wazuh 5.0 request signature (wazuh/wazuh f838614611): the agent's side is
// src/client-agent/https_client/src/{canonicalRequest,cmacSigner,keyProvider}.cpp, the manager's
// src/remoted/remoted_module/src/auth/{authMiddleware,cmac}.cpp. AES-CMAC (RFC 4493, NIST SP
// 800-38B) over a canonical head then the body bytes, keyed with the agent's client.keys key.
import { type Cipher, createCipheriv, timingSafeEqual } from 'node:crypto';

/** The `protocol-version` header value, also the second line of the canonical request. */
export const SIGNATURE_PROTOCOL_VERSION = '1';

/** How old a request's timestamp may be, in seconds (remoted's `maxRequestAgeSeconds`). */
export const DEFAULT_MAX_REQUEST_AGE_SECONDS = 300;

/** How far ahead of the manager's clock a timestamp may be, in seconds (remoted's `maxFutureSkewSeconds`). */
export const DEFAULT_MAX_FUTURE_SKEW_SECONDS = 30;

const BLOCK = 16;
/** Body bytes enciphered per step, so a multi-MB body never needs a same-sized output buffer. */
const CHUNK = 64 * 1024;
const ZERO_BLOCK = Buffer.alloc(BLOCK);

/**
 * An AES key (16, 24 or 32 bytes: AES-128/192/256, chosen by length as both the agent and the
 * manager do) from its hex text. The agent's key is its `client.keys` key, decoded verbatim:
 * a real one is 64 hex characters, so AES-256.
 *
 * @throws TypeError when `hex` is not a string of hex digits (either case), with an even length.
 * @throws RangeError when it decodes to a length other than 16, 24 or 32 bytes.
 */
export function parseAgentKey(hex: string): Buffer {
  if (typeof hex !== 'string') {
    throw new TypeError(`the agent key must be a hex string, got ${typeof hex}`);
  }
  if (hex.length % 2 !== 0 || !/^[0-9A-Fa-f]*$/.test(hex)) {
    throw new TypeError(
      `the agent key must be hex digits of even length (the client.keys key), got ${hex.length} characters${/^[0-9A-Fa-f]*$/.test(hex) ? '' : ' with a non-hex character'}`,
    );
  }
  const bytes = hex.length / 2;
  if (bytes !== 16 && bytes !== 24 && bytes !== 32) {
    throw new RangeError(
      `the agent key must be 16, 24 or 32 bytes (32, 48 or 64 hex digits), got ${bytes} bytes`,
    );
  }
  return Buffer.from(hex, 'hex');
}

function keyBytes(key: string | Uint8Array): Buffer {
  if (typeof key === 'string') return parseAgentKey(key);
  if (key.length !== 16 && key.length !== 24 && key.length !== 32) {
    throw new RangeError(`an AES-CMAC key must be 16, 24 or 32 bytes, got ${key.length}`);
  }
  return Buffer.from(key);
}

/** The cipher block size in bits (128/192/256) → Node's CBC cipher name. */
const cbcName = (key: Buffer): string => `aes-${key.length * 8}-cbc`;

/** `block << 1`, XORed with Rb (0x87) when the top bit was set: RFC 4493's subkey step. */
function doubleBlock(block: Buffer): Buffer {
  const out = Buffer.alloc(BLOCK);
  for (let i = 0; i < BLOCK; i++) {
    out[i] = ((block[i] as number) << 1) | (i + 1 < BLOCK ? (block[i + 1] as number) >> 7 : 0);
  }
  if ((block[0] as number) & 0x80) out[BLOCK - 1] = (out[BLOCK - 1] as number) ^ 0x87;
  return out;
}

/**
 * AES-CMAC (RFC 4493; NIST SP 800-38B for AES-192/256) fed in parts, as the manager's
 * verifier is: `update()` any number of times, then `digest()` once. Built on Node's AES-CBC
 * with a zero IV, whose last output block is the CBC-MAC state; the body is never copied
 * whole.
 *
 * @example
 * ```ts
 * const tag = new AesCmac(key).update(head).update(body).digest(); // 16 bytes
 * ```
 */
export class AesCmac {
  readonly #k1: Buffer;
  readonly #k2: Buffer;
  readonly #cbc: Cipher;
  /** The last 1..16 bytes seen, held back: the final block is treated differently. */
  #pending: Buffer = Buffer.alloc(0);
  #done = false;

  /**
   * @param key 16, 24 or 32 bytes, or their hex text (see {@link parseAgentKey}).
   * @throws TypeError or RangeError for a key of the wrong form or length.
   */
  constructor(key: string | Uint8Array) {
    const k = keyBytes(key);
    const l = createCipheriv(cbcName(k), k, ZERO_BLOCK).setAutoPadding(false).update(ZERO_BLOCK);
    this.#k1 = doubleBlock(l);
    this.#k2 = doubleBlock(this.#k1);
    this.#cbc = createCipheriv(cbcName(k), k, ZERO_BLOCK).setAutoPadding(false);
  }

  /**
   * Feed more message bytes (a string as UTF-8).
   *
   * @throws Error after {@link digest}.
   */
  update(data: string | Uint8Array): this {
    if (this.#done) throw new Error('AesCmac: update() after digest()');
    let bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    if (bytes.length === 0) return this;
    if (this.#pending.length + bytes.length <= BLOCK) {
      this.#pending = Buffer.concat([this.#pending, bytes]);
      return this;
    }
    // Encipher everything but the last 1..16 bytes; the CBC cipher carries the chaining value.
    if (this.#pending.length > 0) {
      const fill = BLOCK - this.#pending.length;
      this.#cbc.update(Buffer.concat([this.#pending, bytes.subarray(0, fill)]));
      bytes = bytes.subarray(fill);
    }
    const keep = bytes.length % BLOCK === 0 ? BLOCK : bytes.length % BLOCK;
    const whole = bytes.length - keep;
    for (let at = 0; at < whole; at += CHUNK) {
      this.#cbc.update(bytes.subarray(at, Math.min(whole, at + CHUNK)));
    }
    this.#pending = Buffer.from(bytes.subarray(whole));
    return this;
  }

  /**
   * The 16-byte tag. Call once.
   *
   * @throws Error when called twice.
   */
  digest(): Buffer {
    if (this.#done) throw new Error('AesCmac: digest() called twice');
    this.#done = true;
    const last = Buffer.alloc(BLOCK);
    const complete = this.#pending.length === BLOCK;
    this.#pending.copy(last);
    if (!complete) last[this.#pending.length] = 0x80;
    const subkey = complete ? this.#k1 : this.#k2;
    for (let i = 0; i < BLOCK; i++) last[i] = (last[i] as number) ^ (subkey[i] as number);
    // The CBC cipher XORs the chaining value in: its output is E(K, last ^ X).
    const tag = this.#cbc.update(last);
    this.#cbc.final();
    return tag.subarray(tag.length - BLOCK);
  }
}

/** AES-CMAC of the concatenation of `parts`, without concatenating them. */
export function aesCmac(key: string | Uint8Array, ...parts: Array<string | Uint8Array>): Buffer {
  const mac = new AesCmac(key);
  for (const part of parts) mac.update(part);
  return mac.digest();
}

/**
 * The canonical request's head, as the agent builds it (`canonicalRequestHead`):
 * `WAZUH-REQUEST\n1\n<METHOD>\n<target>\n<agent id>\n<unix seconds>\n`. The MAC covers this
 * head followed by the exact body bytes on the wire (compressed ones, when compressed).
 */
export function canonicalRequestHead(
  method: string,
  target: string,
  agentId: string,
  timestamp: number | string,
): string {
  return `WAZUH-REQUEST\n${SIGNATURE_PROTOCOL_VERSION}\n${method}\n${target}\n${agentId}\n${timestamp}\n`;
}

/** What {@link signRequest} signs. */
export interface SignRequestInput {
  /** The HTTP method, upper case as sent (`POST`). */
  method: string;
  /** The request target as sent: path and query (`/stateful`). */
  target: string;
  /** The agent id as in `client.keys` (`001`); it is signed and sent as written. */
  agentId: string;
  /** The agent's key: its `client.keys` hex, or the decoded bytes. */
  key: string | Uint8Array;
  /** The body bytes as sent, whole or in parts (their concatenation is signed). */
  body: Uint8Array | readonly Uint8Array[];
  /** Unix time in whole seconds. Default: now. Every attempt is signed afresh (the manager keeps a 300 s window). */
  timestamp?: number;
}

/**
 * The `Authorization` header value of a signed request: `Wazuh <agent id>:<ts>:<mac>`, the
 * MAC as 32 lowercase hex digits. Send it with `protocol-version: 1`.
 *
 * @throws TypeError or RangeError for a malformed key; TypeError for a timestamp that is not a
 *   non-negative integer.
 *
 * @example
 * ```ts
 * const authorization = signRequest({
 *   method: 'POST', target: '/stateful', agentId: '001', key: clientKeysHex, body,
 * });
 * ```
 */
export function signRequest(input: SignRequestInput): string {
  const timestamp = input.timestamp ?? Math.floor(Date.now() / 1000);
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) {
    throw new TypeError(
      `the timestamp must be whole unix seconds >= 0, got ${String(input.timestamp)}`,
    );
  }
  const mac = new AesCmac(input.key).update(
    canonicalRequestHead(input.method, input.target, input.agentId, timestamp),
  );
  const parts = input.body instanceof Uint8Array ? [input.body] : input.body;
  for (const part of parts) mac.update(part);
  return `Wazuh ${input.agentId}:${timestamp}:${mac.digest().toString('hex')}`;
}

/** Why {@link verifyRequestSignature} refused a request, in remoted's order of checks. */
export type SignatureRefusal =
  /** `protocol-version` was given and is not `1`. */
  | 'unsupported-version'
  /** No Authorization header. */
  | 'missing'
  /** Not exactly `Wazuh <digits>:<digits>:<32 lowercase hex>`. */
  | 'malformed'
  /** The timestamp is older than `maxAgeSeconds`. */
  | 'expired'
  /** The timestamp is more than `maxFutureSkewSeconds` ahead. */
  | 'future'
  /** `keyFor` knows no key for the agent. */
  | 'unknown-agent'
  /** The agent's key is not 16, 24 or 32 bytes of hex. */
  | 'bad-key'
  /** The MAC does not match. */
  | 'invalid-mac';

/** What {@link verifyRequestSignature} decided; never thrown. */
export type SignatureVerdict =
  | {
      ok: true;
      /** The agent id as signed (`1` or `001`). */
      signedAgentId: string;
      /** The agent id as client.keys spells it (zero-padded to 3 digits): what the manager forwards as `X-Wazuh-Agent-Id`. */
      agentId: string;
      /** The signed unix time, in seconds. */
      timestamp: number;
    }
  | {
      ok: false;
      /** Which check failed. */
      reason: SignatureRefusal;
      /** A sentence for the logs. */
      message: string;
    };

/** The request a signature is checked against, and the manager's rules. */
export interface VerifyRequestInput {
  /** The request's method (compared upper-cased, as remoted does). */
  method: string;
  /** The request target as received (path and query). */
  target: string;
  /** The body bytes as received, whole or in parts. */
  body: Uint8Array | readonly Uint8Array[];
  /**
   * The key of an agent, by its id as signed (`'1'` or `'001'`: the manager looks keys up by
   * number, so compare numerically); its hex or bytes, or undefined when unknown.
   */
  keyFor: (agentId: string) => string | Uint8Array | undefined;
  /** The `protocol-version` header, when the caller wants it checked (must be `1`). */
  protocolVersion?: string | undefined;
  /** Now, in unix seconds. Default: the clock. */
  now?: number;
  /** Oldest accepted timestamp, in seconds before now. Default {@link DEFAULT_MAX_REQUEST_AGE_SECONDS}. */
  maxSkewSeconds?: number;
  /** Newest accepted timestamp, in seconds after now. Default {@link DEFAULT_MAX_FUTURE_SKEW_SECONDS}. */
  maxFutureSkewSeconds?: number;
}

const AUTHORIZATION = /^Wazuh ([0-9]+):([0-9]+):([0-9a-f]{32})$/;

/**
 * Check a request's `Authorization` header as the manager (remoted's AuthMiddleware) does:
 * protocol version, the header's exact form, the timestamp window, the agent's key, then the
 * AES-CMAC over the canonical head (the agent id and timestamp exactly as written in the
 * header) and the body, compared in constant time. For mock managers and tests.
 *
 * @example
 * ```ts
 * const verdict = verifyRequestSignature(req.headers.authorization, {
 *   method: req.method, target: req.url, body, keyFor: (id) => keys.get(Number(id)),
 * });
 * if (!verdict.ok) return reply(401, verdict.message);
 * ```
 */
export function verifyRequestSignature(
  header: string | undefined,
  input: VerifyRequestInput,
): SignatureVerdict {
  const refuse = (reason: SignatureRefusal, message: string): SignatureVerdict => ({
    ok: false,
    reason,
    message,
  });
  if (input.protocolVersion !== undefined && input.protocolVersion !== SIGNATURE_PROTOCOL_VERSION) {
    return refuse(
      'unsupported-version',
      `protocol-version ${JSON.stringify(input.protocolVersion)} is not supported`,
    );
  }
  if (header === undefined || header === '') {
    return refuse('missing', 'no Authorization header');
  }
  const match = AUTHORIZATION.exec(header);
  if (!match) {
    return refuse('malformed', 'the Authorization header is not "Wazuh <id>:<ts>:<mac hex>"');
  }
  const [, signedAgentId = '', ts = '', macHex = ''] = match;
  const timestamp = Number(ts);
  const now = input.now ?? Math.floor(Date.now() / 1000);
  if (!Number.isSafeInteger(timestamp)) return refuse('malformed', 'the timestamp is too large');
  if (timestamp < now - (input.maxSkewSeconds ?? DEFAULT_MAX_REQUEST_AGE_SECONDS)) {
    return refuse('expired', `the request was signed at ${timestamp}, too long before ${now}`);
  }
  if (timestamp > now + (input.maxFutureSkewSeconds ?? DEFAULT_MAX_FUTURE_SKEW_SECONDS)) {
    return refuse('future', `the request was signed at ${timestamp}, too far after ${now}`);
  }
  const key = input.keyFor(signedAgentId);
  if (key === undefined) return refuse('unknown-agent', `no key for agent ${signedAgentId}`);
  let mac: AesCmac;
  try {
    mac = new AesCmac(key);
  } catch (error) {
    return refuse('bad-key', `the key of agent ${signedAgentId} is unusable: ${String(error)}`);
  }
  // The id and timestamp as written in the header, not reformatted (remoted does the same).
  mac.update(canonicalRequestHead(input.method.toUpperCase(), input.target, signedAgentId, ts));
  const parts = input.body instanceof Uint8Array ? [input.body] : input.body;
  for (const part of parts) mac.update(part);
  if (!timingSafeEqual(mac.digest(), Buffer.from(macHex, 'hex'))) {
    return refuse('invalid-mac', 'the MAC does not match the request');
  }
  return {
    ok: true,
    signedAgentId,
    agentId: BigInt(signedAgentId).toString().padStart(3, '0'),
    timestamp,
  };
}
