#!/usr/bin/env node
// agent-sync-mock-manager: a MockManager served over TCP (and a Unix socket for the 5.0
// `POST /stateful`), for agents in other processes. Prints
// {"port":N,"httpPort":M,"seed":S[,"statefulSocketPath":P]} on one stdout line when ready.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { canonicalAgentId, parseClientKeys } from '../testing/client-keys.js';
import { parseFaultRule } from '../testing/fault-rule-json.js';
import { MockManager } from '../testing/mock-manager.js';
import { MockManagerServer } from '../testing/mock-manager-server.js';
import { parseStatefulFault } from '../testing/stateful-fault-json.js';

const USAGE = `Usage: agent-sync-mock-manager [options]

  --port N                 TCP port of the protocol listener (default 0: any free port)
  --http-port N            TCP port of the HTTP endpoint (default 0: any free port)
  --host ADDRESS           address of both listeners (default 127.0.0.1)
  --session-timeout-ms N   drop sessions idle this long (default 30000)
  --empty-sessions MODE    accept (default, 5.0 betas) or refuse (like build ad9475fb35:
                           StartAck Error to every size-0 Start, ChecksumModule ignored)
  --end-ack-delay-ms N     send EndAck N ms after a Full/Delta session is complete, like the
                           real indexer's bulk flush (every ~20 s); default 0
  --workers N              handle messages on N simulated workers, so a message may overtake
                           up to N-1 earlier ones, like the real worker pool; default 1 (in order)
  --drop-probability P     lose each agent message with probability P (0..1)
  --fault JSON             inject a fault rule (repeatable), e.g.
                           '{"type":"DataValue","seq":3,"action":"drop","times":"Infinity"}'
  --seed N                 seed of the PRNG behind probabilities and workers (default random;
                           the one used is printed on the first line)

Wazuh 5.0 (POST /stateful, on the HTTP port and the --stateful-socket):
  --stateful-socket PATH   also serve the HTTP endpoint on a Unix socket at PATH, as the real
                           manager module serves /stateful (a stale socket file is replaced)
  --stateful-max-connections N
                           connections the socket serves at once; one more is answered 503
                           (default 1024, the real max_parallel_connections)
  --cluster-name NAME      the manager's cluster name; Start.cluster_name must equal it
                           (default wazuh)
  --max-inflight-bytes N   the in-flight byte budget; a body over it less 282624 bytes of
                           overhead is answered 413 (default 268435456, the real default)
  --vd-feed-offset N       the vulnerability feed offset VD sessions must carry (default 0)
  --indexer-down           start with the indexer unreachable: sessions are answered 503
  --stateful-fault JSON    inject a /stateful fault (repeatable), e.g.
                           '{"action":"unavailable","retryAfterSeconds":5,"times":2}'
  --agent-key ID=HEX       require signed /stateful requests, as remoted does, and accept agent
                           ID's signature with the client.keys key HEX (repeatable)
  --agent-keys-file PATH   the same for every agent of a client.keys file (ID NAME IP KEY lines),
                           read once at start; --agent-key entries take precedence

  --verbose                log the manager's activity on stderr
  --help                   show this help

HTTP: GET /health, GET /stats, GET /documents[?index=NAME&agent=ID],
      POST /faults (a fault rule as JSON), POST /stateful-faults (a stateful fault as JSON),
      DELETE /faults, POST /reset, POST /stateful (a 5.0 session; X-Wazuh-Agent-Id header,
      or with agent keys the Authorization signature)
Stops on SIGINT or SIGTERM.`;

function integer(name: string, text: string | undefined, min: number, max: number): number {
  if (text === undefined) return 0;
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min || value > max) {
    throw new RangeError(`--${name} must be an integer in ${min}..${max}, got '${text}'`);
  }
  return value;
}

function probability(text: string): number {
  const value = Number(text);
  if (text.trim() === '' || !(value >= 0 && value <= 1)) {
    throw new RangeError(`--drop-probability must be a number in 0..1, got '${text}'`);
  }
  return value;
}

/** The value of a JSON flag, parsed by `parse`; RangeError naming the flag otherwise. */
function jsonFlag<T>(name: string, text: string, parse: (json: unknown) => T): T {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new RangeError(`--${name} must be JSON: ${(error as Error).message}`);
  }
  try {
    return parse(json);
  } catch (error) {
    throw new RangeError(`--${name}: ${(error as Error).message}`);
  }
}

function feedOffset(text: string | undefined): bigint | undefined {
  if (text === undefined) return undefined;
  if (!/^\d{1,20}$/.test(text) || BigInt(text) >= 2n ** 64n) {
    throw new RangeError(`--vd-feed-offset must be an integer in 0..2^64-1, got '${text}'`);
  }
  return BigInt(text);
}

function clusterName(text: string | undefined): string | undefined {
  if (text === '') throw new RangeError('--cluster-name must not be empty');
  return text;
}

/** --agent-keys-file, then each --agent-key ID=HEX over it; undefined when neither is given. */
function agentKeys(
  file: string | undefined,
  pairs: readonly string[] | undefined,
): Record<string, string> | undefined {
  if (file === undefined && pairs === undefined) return undefined;
  if (file === '') throw new RangeError('--agent-keys-file must not be empty');
  // Unreadable: an Error, not a RangeError, so it exits 1 like a port already taken.
  const keys = file === undefined ? {} : parseClientKeys(readFileSync(file, 'utf8'));
  for (const pair of pairs ?? []) {
    const match = /^([0-9]+)=([^=\s]+)$/.exec(pair);
    if (!match)
      throw new RangeError(`--agent-key must be ID=HEX (e.g. 001=<64 hex>), got '${pair}'`);
    const [, id = '', hex = ''] = match;
    // As parseClientKeys spells ids, so '1' replaces the file's '001'.
    keys[canonicalAgentId(id)] = hex;
  }
  return keys;
}

function emptySessions(text: string | undefined): 'accept' | 'refuse' | undefined {
  if (text === undefined || text === 'accept' || text === 'refuse') return text;
  throw new RangeError(`--empty-sessions must be accept or refuse, got '${text}'`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      'http-port': { type: 'string' },
      host: { type: 'string' },
      'session-timeout-ms': { type: 'string' },
      'empty-sessions': { type: 'string' },
      'end-ack-delay-ms': { type: 'string' },
      workers: { type: 'string' },
      'drop-probability': { type: 'string' },
      fault: { type: 'string', multiple: true },
      seed: { type: 'string' },
      'stateful-socket': { type: 'string' },
      'stateful-max-connections': { type: 'string' },
      'cluster-name': { type: 'string' },
      'max-inflight-bytes': { type: 'string' },
      'vd-feed-offset': { type: 'string' },
      'indexer-down': { type: 'boolean' },
      'stateful-fault': { type: 'string', multiple: true },
      'agent-key': { type: 'string', multiple: true },
      'agent-keys-file': { type: 'string' },
      verbose: { type: 'boolean' },
      help: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const logger = values.verbose
    ? (level: string, message: string) => process.stderr.write(`${level} ${message}\n`)
    : undefined;
  const optional = (name: keyof typeof values, min: number) => {
    const text = values[name];
    return typeof text === 'string' ? integer(name, text, min, Number.MAX_SAFE_INTEGER) : undefined;
  };
  const manager = new MockManager({
    sessionTimeoutMs: optional('session-timeout-ms', 1),
    emptySessions: emptySessions(values['empty-sessions']),
    endAckDelayMs: optional('end-ack-delay-ms', 0),
    workers: optional('workers', 1),
    seed: values.seed === undefined ? undefined : integer('seed', values.seed, 0, 2 ** 32 - 1),
    clusterName: clusterName(values['cluster-name']),
    maxInflightBytes: optional('max-inflight-bytes', 1),
    vdFeedOffset: feedOffset(values['vd-feed-offset']),
    logger,
  });
  const drop = values['drop-probability'];
  const rules = (values.fault ?? []).map((text) => jsonFlag('fault', text, parseFaultRule));
  const statefulFaults = (values['stateful-fault'] ?? []).map((text) =>
    jsonFlag('stateful-fault', text, parseStatefulFault),
  );
  const keys = agentKeys(values['agent-keys-file'], values['agent-key']);
  const socketPath = values['stateful-socket'];
  if (socketPath === '') throw new RangeError('--stateful-socket must not be empty');
  if (drop !== undefined) {
    rules.push({ action: 'drop', probability: probability(drop), times: Number.POSITIVE_INFINITY });
  }
  for (const rule of rules) manager.inject(rule);
  for (const fault of statefulFaults) manager.injectStateful(fault);
  if (values['indexer-down']) manager.setIndexerAvailable(false);
  const server = new MockManagerServer({
    manager,
    host: values.host,
    port: integer('port', values.port, 0, 65535),
    httpPort: integer('http-port', values['http-port'], 0, 65535),
    statefulSocketPath: socketPath,
    statefulMaxConnections: optional('stateful-max-connections', 1),
    ...(keys === undefined ? {} : { agentKeys: keys }),
    logger,
  });
  // Handlers go in before the ports line: a caller may signal as soon as it reads it.
  const starting = server.start();
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger?.('info', `${signal}: shutting down`);
    // Should something still hold the event loop after close, do not hang the caller.
    setTimeout(() => process.exit(process.exitCode ?? 0), 5000).unref();
    starting
      .catch(() => {})
      .then(() => server.close())
      // The server leaves a manager it was given open.
      .then(() => manager.close())
      .then(
        () => {
          process.exitCode = 0;
        },
        (error: unknown) => {
          process.stderr.write(`agent-sync-mock-manager: close failed: ${String(error)}\n`);
          process.exitCode = 1;
        },
      );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  const { port, httpPort, statefulSocketPath } = await starting;
  if (!stopping) {
    const ready = { port, httpPort, seed: manager.seed, statefulSocketPath };
    process.stdout.write(`${JSON.stringify(ready)}\n`);
  }
}

main().catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown } | undefined)?.code;
  // Bad arguments get the usage and exit 2; failing to start (port taken...) exits 1.
  const badUsage =
    error instanceof RangeError || (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS'));
  process.stderr.write(`agent-sync-mock-manager: ${message}\n${badUsage ? `\n${USAGE}\n` : ''}`);
  process.exitCode = badUsage ? 2 : 1;
});
