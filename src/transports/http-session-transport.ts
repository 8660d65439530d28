// POST /stateful straight to a manager, as the reference agent's HTTPS client does (wazuh/wazuh
// f838614611, src/client-agent/https_client/src/: statefulStream.cpp, retrySender.cpp,
// backoff.hpp, outcomeClassifier.cpp, curlPerformer.cpp, cmacSigner.cpp).
import {
  type ClientRequest,
  Agent as HttpAgent,
  request as httpRequest,
  type IncomingMessage,
} from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import * as zlib from 'node:zlib';
import type { LogFunction, Logger } from '../interfaces/logger.js';
import type {
  SessionAnswer,
  SessionRequest,
  SessionTransport,
} from '../interfaces/session-transport.js';
import { toLogFunction } from '../logging.js';
import { attemptLimit } from '../session/attempt-limit.js';
import { retryDelayMs } from '../session/retry-delay.js';
import { parseAgentKey, SIGNATURE_PROTOCOL_VERSION, signRequest } from './request-signature.js';

/** The reference's per-attempt limit of a `/stateful` POST (`statefulTimeoutMs`), in ms. */
export const STATEFUL_TIMEOUT_MS = 120_000;
/** The reference's attempts per `/stateful` session (`STATEFUL_MAX_ATTEMPTS`). */
export const STATEFUL_MAX_ATTEMPTS = 5;
/** The reference's backoff base (`backoffBaseMs`): the first retry waits up to this, in ms. */
export const BACKOFF_BASE_MS = 1000;
/** The reference's backoff cap (`backoffCapMs`), in ms. */
export const BACKOFF_CAP_MS = 60_000;
/** Bytes of a response body kept (the rest is dropped): the manager's answers are short JSON. */
const MAX_RESPONSE_BYTES = 64 * 1024;

/** TLS settings of an `https://` {@link HttpSessionTransportOptions.url}. */
export interface HttpSessionTlsOptions {
  /** Trusted CA certificate(s), PEM. Default: Node's bundled roots. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Client certificate (mTLS), PEM; with `key`. */
  cert?: string | Buffer;
  /** Client private key (mTLS), PEM; with `cert`. */
  key?: string | Buffer;
  /** Refuse a server whose certificate does not verify. Default true (the reference fails closed). */
  rejectUnauthorized?: boolean;
  /** The name the server certificate must carry (SNI). Default: the URL's host. */
  servername?: string;
}

/**
 * The transport's own retries around one `send()` (the reference's RetrySender). Default one
 * attempt: the sync's `retries` and `backoff` already retry a session with the same policy,
 * and two layers would multiply (see {@link HttpSessionTransport}).
 */
export interface HttpSessionRetryOptions {
  /** Attempts per `send()`, >= 1. Default 1; the reference agent makes 5 ({@link STATEFUL_MAX_ATTEMPTS}). */
  attempts?: number;
  /** Full-jitter backoff: retry n waits uniform in [0, min(capMs, baseMs * 2^(n-1))] ms. Default {@link BACKOFF_BASE_MS}. */
  baseMs?: number;
  /** Cap of that window, in ms. Default {@link BACKOFF_CAP_MS}. */
  capMs?: number;
}

/** Options of {@link HttpSessionTransport}. */
export interface HttpSessionTransportOptions {
  /**
   * Where to POST: `http://` or `https://`, path default `/stateful` (a URL without a path, or
   * with `/`, gets it). Required unless `socketPath` is given; then default
   * `http://localhost/stateful` (only its path and scheme matter).
   */
  url?: string;
  /** HTTP over this Unix STREAM socket instead of TCP (the manager module's `inventory-sync.sock`). */
  socketPath?: string;
  /** The agent id, decimal as in `client.keys` (`001`). Sent as `X-Wazuh-Agent-Id` and signed. */
  agentId: string;
  /**
   * The agent's `client.keys` key, hex (64 digits for a real key: AES-256-CMAC; 32 or 48 also
   * accepted). Given: every attempt is signed (`Authorization: Wazuh <id>:<ts>:<mac>`) with a
   * fresh timestamp. Absent: requests go unsigned, for a manager module reached directly.
   */
  agentKey?: string;
  /** TLS for an `https://` URL. */
  tls?: HttpSessionTlsOptions;
  /**
   * `'zstd'`: send bodies zstd-compressed (`Content-Encoding: zstd`), signed as compressed; a
   * 415 resends uncompressed and turns compression off for this transport. Default `'none'`
   * (the reference's default too). Needs `zstdCompress` or a runtime whose `node:zlib` has
   * `zstdCompressSync` (Node >= 22.15): otherwise the constructor throws. Only remoted decodes
   * zstd: the manager module reached over `socketPath` takes the compressed bytes as the
   * session and answers 400.
   */
  compression?: 'none' | 'zstd';
  /** A zstd compressor for runtimes without one in `node:zlib` (e.g. from a native binding). */
  zstdCompress?: (body: Uint8Array) => Uint8Array;
  /** Content-Type of the body. Default `application/octet-stream` (what remoted forwards). */
  contentType?: string;
  /** Open connections at most (requests beyond wait for one). Default 4. */
  maxSockets?: number;
  /** Keep connections open between requests. Default true. */
  keepAlive?: boolean;
  /**
   * Limit of one attempt (connect, send, answer), in ms. Default {@link STATEFUL_TIMEOUT_MS}.
   * The sync's `timeoutMs` (default 30 s) still ends the whole `send()` first when shorter.
   */
  timeoutMs?: number;
  /** The transport's own retries; see {@link HttpSessionRetryOptions}. */
  retry?: HttpSessionRetryOptions;
  /** The clock, in ms since the epoch, for the signature's timestamp. Default `Date.now`. */
  now?: () => number;
  /** Default: silent. */
  logger?: Logger;
}

/** One attempt's end: the manager's answer, or why none came. */
type Attempt = { answer: SessionAnswer } | { error: Error };

function positiveInt(name: string, value: number | undefined, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < min) {
    throw new RangeError(`${name} must be an integer >= ${min}, got ${String(value)}`);
  }
  return value;
}

/** `Retry-After` as seconds: delta-seconds or an HTTP date; undefined when absent or unreadable. */
function retryAfterSeconds(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^[0-9]+$/.test(text)) return Number(text) > 0 ? Number(text) : undefined;
  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  const seconds = Math.ceil((date - nowMs) / 1000);
  return seconds > 0 ? seconds : undefined;
}

/** The reference's retryable outcomes: no answer, 429, 5xx (403 excepted: see the class doc). */
const retryable = (attempt: Attempt): boolean =>
  'error' in attempt || attempt.answer.status === 429 || attempt.answer.status >= 500;

/**
 * A {@link SessionTransport} that POSTs each session to a Wazuh 5.0 manager's `/stateful`:
 * straight to the manager module's Unix socket (`socketPath`, unsigned, as remoted forwards
 * it), or to a manager's HTTPS endpoint signed with the agent's key, as the reference agent's
 * HTTPS client does.
 *
 * Each request carries `Content-Length` (the module answers 411 to chunked bodies),
 * `Content-Type`, `X-Session-Id` (the session id, the same on every retry: the manager
 * deduplicates by it), `protocol-version: 1`, `X-Wazuh-Agent-Id` (always: the manager module
 * needs it, and remoted builds its own from the verified signature and does not forward the
 * agent's), and with `agentKey` an `Authorization` signature made afresh for every attempt.
 * Head and body go out in one write.
 *
 * Answers: the status and body are resolved as they come (the sync maps them); no answer
 * (connection refused or reset, the per-attempt timeout) rejects, and the sync retries. Within
 * one `send()`, as the reference's RetrySender: a 401 is re-signed with a fresh timestamp and
 * sent once more; a 415 is resent once uncompressed, and compression stays off for this
 * transport from then on; with `retry.attempts` > 1, no answer, 429 and 5xx are retried after
 * a full-jitter backoff and at least the answer's Retry-After. The reference also retries a
 * 403 (it expects one only from a proxy); the manager module answers 403 for an identity
 * mismatch, which no retry changes, so this transport does not.
 *
 * How the retries compose with the sync's: the sync's `timeoutMs` bounds one whole `send()`
 * (all of this transport's attempts and pauses) and its `retries` repeat the `send()`. The
 * defaults leave the retrying to the sync (one attempt here; the sync's own backoff is the
 * reference's 1 s..60 s full jitter and honours Retry-After). Raising `retry.attempts` calls
 * for a larger sync `timeoutMs` (about `attempts * timeoutMs` plus the pauses) and fewer
 * sync `retries`, or the attempts multiply.
 *
 * @example
 * ```ts
 * const transport = new HttpSessionTransport({
 *   socketPath: '/var/wazuh-manager/queue/sockets/inventory-sync.sock',
 *   agentId: '001',
 * });
 * const sync = new AgentSyncProtocol({
 *   moduleName: 'syscollector', dbPath, wire: 'fullSession', clusterName: 'cluster01',
 *   agentInfo: { id: '001' }, transport,
 * });
 * // ... later
 * transport.close();
 * ```
 */
export class HttpSessionTransport implements SessionTransport {
  /** The URL requests go to (with `socketPath`, only its scheme and path are used). */
  readonly url: URL;
  /** The Unix socket requests go through, when one was given. */
  readonly socketPath: string | undefined;
  /** The agent id sent and signed. */
  readonly agentId: string;
  readonly #key: Buffer | undefined;
  readonly #target: string;
  readonly #agent: HttpAgent;
  readonly #request: typeof httpRequest;
  readonly #tls: HttpSessionTlsOptions;
  readonly #contentType: string;
  readonly #timeoutMs: number;
  readonly #attempts: number;
  readonly #baseMs: number;
  readonly #capMs: number;
  readonly #now: () => number;
  readonly #compress: ((body: Uint8Array) => Uint8Array) | undefined;
  readonly #log: LogFunction;
  readonly #live = new Set<ClientRequest>();
  #compressing: boolean;
  #closed = false;

  /**
   * Nothing connects until the first `send()`.
   *
   * @throws TypeError when `url` is missing (without `socketPath`) or not http(s), `agentId` is
   *   not decimal digits, `agentKey` is not hex; RangeError for a key of the wrong length or an
   *   out-of-range number; Error when `compression: 'zstd'` has no compressor on this runtime.
   */
  constructor(options: HttpSessionTransportOptions) {
    if (options.url === undefined && options.socketPath === undefined) {
      throw new TypeError('HttpSessionTransport needs a url or a socketPath');
    }
    const url = new URL(options.url ?? 'http://localhost/stateful');
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new TypeError(`the url must be http:// or https://, got ${url.protocol}`);
    }
    if (url.pathname === '/' && !url.search) url.pathname = '/stateful';
    this.url = url;
    this.#target = url.pathname + url.search;
    this.socketPath = options.socketPath;
    if (typeof options.agentId !== 'string' || !/^[0-9]+$/.test(options.agentId)) {
      throw new TypeError(
        `agentId must be the decimal agent id of client.keys, got ${JSON.stringify(options.agentId)}`,
      );
    }
    this.agentId = options.agentId;
    this.#key = options.agentKey === undefined ? undefined : parseAgentKey(options.agentKey);
    this.#timeoutMs = positiveInt('timeoutMs', options.timeoutMs, STATEFUL_TIMEOUT_MS);
    this.#attempts = positiveInt('retry.attempts', options.retry?.attempts, 1);
    this.#baseMs = positiveInt('retry.baseMs', options.retry?.baseMs, BACKOFF_BASE_MS, 0);
    this.#capMs = positiveInt('retry.capMs', options.retry?.capMs, BACKOFF_CAP_MS, 0);
    const maxSockets = positiveInt('maxSockets', options.maxSockets, 4);
    this.#contentType = options.contentType ?? 'application/octet-stream';
    this.#now = options.now ?? Date.now;
    this.#tls = options.tls ?? {};
    const https = url.protocol === 'https:';
    const keepAlive = options.keepAlive ?? true;
    this.#agent = https
      ? new HttpsAgent({ keepAlive, maxSockets })
      : new HttpAgent({ keepAlive, maxSockets });
    this.#request = https ? (httpsRequest as typeof httpRequest) : httpRequest;
    const native = (zlib as { zstdCompressSync?: (data: Uint8Array) => Buffer }).zstdCompressSync;
    this.#compress = options.compression === 'zstd' ? (options.zstdCompress ?? native) : undefined;
    if (options.compression === 'zstd' && this.#compress === undefined) {
      throw new Error(
        `compression 'zstd' needs zlib.zstdCompressSync (Node >= 22.15; this is ${process.version}) or a zstdCompress option`,
      );
    }
    this.#compressing = this.#compress !== undefined;
    const where =
      options.socketPath === undefined ? url.href : `${options.socketPath} ${url.pathname}`;
    this.#log = toLogFunction(options.logger, `http session transport ${where}: `, {
      component: 'http-session-transport',
    });
    if (this.#compressing && options.socketPath !== undefined) {
      // Seen on the real module (f838614611): it ignores Content-Encoding and answers 400.
      this.#log(
        'warn',
        "compression 'zstd' over a Unix socket: the manager module does not decode zstd (remoted does), it answers 400",
      );
    }
  }

  /** Whether bodies are still sent compressed (false from the first 415 on). */
  get compressing(): boolean {
    return this.#compressing;
  }

  /**
   * POST one session; resolve with the manager's status, body and Retry-After. Rejects when no
   * answer came (after the transport's own attempts), when `signal` aborts, or after `close()`.
   */
  async send(session: SessionRequest, signal: AbortSignal): Promise<SessionAnswer> {
    if (this.#closed) throw new Error('HttpSessionTransport is closed');
    signal.throwIfAborted();
    let compressed: Uint8Array | undefined;
    if (this.#compressing && this.#compress && session.body.length > 0) {
      try {
        compressed = this.#compress(session.body);
      } catch (error) {
        // As the reference: never lose a session over compression; send it as it is.
        this.#log('warn', `zstd compression failed, sending uncompressed: ${String(error)}`);
      }
    }
    let authRetried = false;
    let compressionRetried = false;
    let result: Attempt | undefined;
    for (let attempt = 1; attempt <= this.#attempts; attempt++) {
      const once = async (): Promise<Attempt> =>
        this.#closed
          ? { error: new Error('HttpSessionTransport is closed') }
          : this.#attemptOnce(session, this.#compressing ? compressed : undefined, signal);
      result = await once();
      // The two one-shot resends of the reference, in whichever order they come.
      for (;;) {
        if ('answer' in result && result.answer.status === 401 && this.#key && !authRetried) {
          authRetried = true;
          this.#log('debug', `session ${session.id}: 401, re-signing once with a fresh timestamp`);
          result = await once();
          continue;
        }
        if ('answer' in result && result.answer.status === 415 && !compressionRetried) {
          compressionRetried = true;
          if (this.#compressing) {
            this.#compressing = false;
            this.#log('warn', 'the manager refused zstd (415): sending uncompressed from now on');
          }
          result = await once();
          continue;
        }
        break;
      }
      if (!retryable(result) || attempt === this.#attempts || signal.aborted) break;
      const delayMs = retryDelayMs(
        attempt,
        { minMs: this.#baseMs, maxMs: this.#capMs, factor: 2 },
        'answer' in result ? result.answer.retryAfterSeconds : 0,
      );
      this.#log(
        'debug',
        `session ${session.id}: attempt ${attempt} ${'answer' in result ? `got HTTP ${result.answer.status}` : `failed: ${result.error.message}`}, next in ${delayMs} ms`,
        { session: session.id, attempt, delayMs },
      );
      if (delayMs > 0) await sleep(delayMs, undefined, { signal });
    }
    const last = result as Attempt;
    if ('error' in last) throw last.error;
    return last.answer;
  }

  /** Destroy every connection and fail requests in flight; later `send()` calls reject. */
  close(): void {
    this.#closed = true;
    for (const request of this.#live) request.destroy(new Error('HttpSessionTransport closed'));
    this.#agent.destroy();
  }

  /** One request: signed now, head and body in one write, within the per-attempt timeout. */
  #attemptOnce(
    session: SessionRequest,
    compressed: Uint8Array | undefined,
    signal: AbortSignal,
  ): Promise<Attempt> {
    const body = compressed ?? session.body;
    const isCompressed = compressed !== undefined;
    const headers: Record<string, string> = {
      'Content-Type': this.#contentType,
      'Content-Length': String(body.length),
      'X-Session-Id': session.id,
      'X-Wazuh-Agent-Id': this.agentId,
      'protocol-version': SIGNATURE_PROTOCOL_VERSION,
    };
    if (isCompressed) headers['Content-Encoding'] = 'zstd';
    if (this.#key) {
      headers.Authorization = signRequest({
        method: 'POST',
        target: this.#target,
        agentId: this.agentId,
        key: this.#key,
        body,
        timestamp: Math.floor(this.#now() / 1000),
      });
    }
    return new Promise<Attempt>((resolve) => {
      let settled = false;
      const finish = (result: Attempt) => {
        if (settled) return;
        settled = true;
        limit.dispose();
        this.#live.delete(request);
        resolve(result);
      };
      const fail = (error: Error) => finish({ error });
      const request = this.#request({
        method: 'POST',
        protocol: this.url.protocol,
        ...(this.socketPath === undefined
          ? {
              host: this.url.hostname.replace(/^\[(.*)\]$/, '$1'),
              port: this.url.port || undefined,
            }
          : { socketPath: this.socketPath, host: this.url.hostname }),
        path: this.#target,
        headers,
        agent: this.#agent,
        ...(this.url.protocol === 'https:' ? this.#tlsOptions() : {}),
      });
      this.#live.add(request);
      // The attempt ends at the per-attempt timeout or when the sync aborts.
      const limit = attemptLimit(signal, this.#timeoutMs);
      void limit.ended.then(({ message }) => request.destroy(new Error(message)));
      request.on('error', (error) => fail(error));
      request.on('response', (response: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let kept = 0;
        response.on('data', (chunk: Buffer) => {
          if (kept < MAX_RESPONSE_BYTES) chunks.push(chunk.subarray(0, MAX_RESPONSE_BYTES - kept));
          kept += chunk.length;
        });
        response.on('error', (error) => fail(error));
        // A connection that ends mid-answer (after 'end' this is a no-op).
        response.on('close', () =>
          fail(new Error('the connection closed before the answer ended')),
        );
        response.on('end', () => {
          const status = response.statusCode ?? 0;
          const text = Buffer.concat(chunks).toString('utf8');
          const header = response.headers['retry-after'];
          const retryAfter = retryAfterSeconds(header, this.#now());
          finish({
            answer: {
              status,
              ...(text ? { body: text } : {}),
              ...(retryAfter === undefined ? {} : { retryAfterSeconds: retryAfter }),
            },
          });
        });
      });
      // One write: Node sends the head with the first (here the only) body chunk.
      request.end(body);
    });
  }

  #tlsOptions() {
    const { ca, cert, key, rejectUnauthorized, servername } = this.#tls;
    return {
      ...(ca === undefined ? {} : { ca }),
      ...(cert === undefined ? {} : { cert }),
      ...(key === undefined ? {} : { key }),
      rejectUnauthorized: rejectUnauthorized ?? true,
      ...(servername === undefined ? {} : { servername }),
    };
  }
}
