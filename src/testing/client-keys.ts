// The agent keys a MockManagerServer checks `/stateful` signatures with, read as remoted's
// keystore reads client.keys (wazuh/wazuh f838614611,
// src/remoted/remoted_module/src/auth/keystore.cpp `reload`, cmac.cpp `fromLowerHex`).
import { parseAgentKey } from '../transports/request-signature.js';

/**
 * The agent keys of a {@link MockManagerServer}: client.keys hex by agent id (`'001'` and `'1'`
 * name the same agent, as remoted looks keys up by number), or a function given the agent id
 * as client.keys spells it (zero-padded to 3 digits) returning its hex, undefined when unknown.
 */
export type AgentKeys =
  | Readonly<Record<string, string>>
  | ((agentId: string) => string | undefined);

/** An agent id (decimal digits) as client.keys spells it: its number, zero-padded to 3 digits. */
export const canonicalAgentId = (id: string): string => BigInt(id).toString().padStart(3, '0');

/** remoted's ids are 32-bit: a longer one names no agent (keystore.cpp `parseAgentId`). */
const inRange = (id: string): boolean => BigInt(id) <= 0xffff_ffffn;

/**
 * The key bytes remoted's keystore decodes from a client.keys key: lowercase hex only (an
 * uppercase digit makes the key unusable there). Empty when unusable: the signature check then
 * refuses that agent's requests, as remoted does (401, `missing_key` in its log).
 */
function decodeKey(hex: string): Uint8Array {
  if (!/^[0-9a-f]*$/.test(hex)) return new Uint8Array();
  try {
    return parseAgentKey(hex); // the agent's rule for the rest: even length, 16, 24 or 32 bytes
  } catch {
    return new Uint8Array();
  }
}

/**
 * The keys of `agentKeys` by the id as signed (any number of leading zeros): the key bytes, an
 * empty array for a key remoted could not use, undefined for an unknown agent.
 *
 * @throws TypeError when a record names an agent id that is not decimal digits.
 */
export function agentKeyLookup(agentKeys: AgentKeys): (signedId: string) => Uint8Array | undefined {
  if (typeof agentKeys === 'function') {
    return (signedId) => {
      if (!inRange(signedId)) return undefined;
      const hex = agentKeys(canonicalAgentId(signedId));
      return hex === undefined ? undefined : decodeKey(hex);
    };
  }
  const keys = new Map<string, Uint8Array>();
  for (const [id, hex] of Object.entries(agentKeys)) {
    if (!/^[0-9]+$/.test(id)) {
      throw new TypeError(`agentKeys: the agent id ${JSON.stringify(id)} is not decimal digits`);
    }
    keys.set(canonicalAgentId(id), decodeKey(String(hex)));
  }
  return (signedId) => (inRange(signedId) ? keys.get(canonicalAgentId(signedId)) : undefined);
}

/**
 * The agent keys of a client.keys file's text (`ID NAME IP KEY` lines), as remoted's keystore
 * loads them: blank lines and lines starting with `#` or a space are skipped, so are lines of
 * fewer than four fields, removed agents (a name starting with `#` or `!`) and ids that are not
 * decimal digits; a later line for the same id wins. Keys are kept as written (see
 * {@link AgentKeys}: one that is not lowercase hex of 16, 24 or 32 bytes refuses that agent).
 *
 * @example
 * ```ts
 * const server = new MockManagerServer({
 *   agentKeys: parseClientKeys(readFileSync('/var/ossec/etc/client.keys', 'utf8')),
 * });
 * ```
 */
export function parseClientKeys(text: string): Record<string, string> {
  const keys: Record<string, string> = {};
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#') || line.startsWith(' ')) continue;
    const [id, name, ip, key] = line.trim().split(/\s+/);
    if (id === undefined || name === undefined || ip === undefined || key === undefined) continue;
    if (name.startsWith('#') || name.startsWith('!') || !/^[0-9]+$/.test(id) || !inRange(id)) {
      continue;
    }
    keys[canonicalAgentId(id)] = key;
  }
  return keys;
}
