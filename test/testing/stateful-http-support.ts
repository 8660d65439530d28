// Raw HTTP requests to MockManagerServer's `POST /stateful` (node:http, over TCP or a Unix
// socket) with FullSession bodies built from the wire-5 test helpers; shared by the server's
// and the CLI's tests.
import { type Agent, type IncomingHttpHeaders, request } from 'node:http';
import { signRequest } from '../../src/transports/request-signature.js';
import {
  type DecodedPayload,
  type DecodedStart,
  FullSessionEncoder,
  Operation,
} from '../../src/wire-5/index.js';
import type { HttpTarget as Target } from '../transports/mock-cli.js';
import { session, toEncoderInput } from '../wire-5/support.js';

export const PACKAGES = 'wazuh-states-inventory-packages';
const encoder = new FullSessionEncoder();
const utf8 = new TextEncoder();

/** A FullSession body; the Start is support.ts's (agent 001, cluster 'wazuh') with `start` over it. */
export function body(start: Partial<DecodedStart>, payload: DecodedPayload | null): Uint8Array {
  return encoder.encode(...toEncoderInput(session(start, payload))).slice();
}

/** A Delta of one package document `id`; `start` changes the Start (cluster, agent...). */
export const delta = (id: string, start: Partial<DecodedStart> = {}) =>
  body(
    { index: [PACKAGES], ...start },
    {
      type: 'SyncData',
      values: [
        {
          operation: Operation.Upsert,
          id,
          index: PACKAGES,
          version: 0n,
          data: utf8.encode(JSON.stringify({ package: { name: id } })),
        },
      ],
      contexts: [],
    },
  );

/** Where a request goes: the HTTP port or the Unix socket. */
export type { HttpTarget as Target } from '../transports/mock-cli.js';

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

interface Send {
  method?: string;
  path?: string;
  headers?: Record<string, string | number>;
  /** The body; with `declareOnly` only its length is declared and nothing is sent. */
  body?: Uint8Array | string;
  declareOnly?: number;
  agent?: Agent;
}

/** One raw HTTP request with node:http; resolves with the whole answer. */
export function send(target: Target, options: Send = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({
      ...('port' in target ? { host: '127.0.0.1', port: target.port } : target),
      method: options.method ?? 'POST',
      path: options.path ?? '/stateful',
      headers: options.headers,
      agent: options.agent ?? false,
    });
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        });
        if (options.declareOnly !== undefined) req.destroy();
      });
    });
    if (options.declareOnly !== undefined) {
      req.setHeader('content-length', options.declareOnly);
      req.flushHeaders();
      return;
    }
    req.end(options.body);
  });
}

/** `POST /stateful` of `payload` as agent `agentId` ('' sends no X-Wazuh-Agent-Id). */
export function stateful(
  target: Target,
  payload: Uint8Array | string,
  agentId = '001',
  extra = {},
) {
  const headers: Record<string, string> = { 'content-type': 'application/octet-stream', ...extra };
  if (agentId !== '') headers['x-wazuh-agent-id'] = agentId;
  return send(target, { headers, body: payload });
}

/** One JSON request to the mock's HTTP endpoint: the status and the parsed body. */
export { httpJson as json } from '../transports/mock-cli.js';

/**
 * The headers of a `POST /stateful` of `payload` signed as agent `agentId` with `key` (at
 * `timestamp`, default now): `protocol-version` and `Authorization`, as an agent sends them.
 */
export const signedHeaders = (
  payload: Uint8Array,
  agentId: string,
  key: string,
  timestamp?: number,
) => ({
  'protocol-version': '1',
  authorization: signRequest({
    method: 'POST',
    target: '/stateful',
    agentId,
    key,
    body: payload,
    ...(timestamp === undefined ? {} : { timestamp }),
  }),
});
