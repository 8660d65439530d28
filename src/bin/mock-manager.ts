#!/usr/bin/env node
// agent-sync-mock-manager: a MockManager served over TCP, for agents in other
// processes. Prints {"port":N,"httpPort":M} on one stdout line when ready.
import { parseArgs } from 'node:util';
import { MockManagerServer } from '../testing/mock-manager-server.js';

const USAGE = `Usage: agent-sync-mock-manager [options]

  --port N                 TCP port of the protocol listener (default 0: any free port)
  --http-port N            TCP port of the HTTP endpoint (default 0: any free port)
  --host ADDRESS           address of both listeners (default 127.0.0.1)
  --session-timeout-ms N   drop sessions idle this long (default 30000)
  --verbose                log the manager's activity on stderr
  --help                   show this help

HTTP: GET /health, GET /stats, GET /documents[?index=NAME&agent=ID]
Stops on SIGINT or SIGTERM.`;

function integer(name: string, text: string | undefined, min: number, max: number): number {
  if (text === undefined) return 0;
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min || value > max) {
    throw new RangeError(`--${name} must be an integer in ${min}..${max}, got '${text}'`);
  }
  return value;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      'http-port': { type: 'string' },
      host: { type: 'string' },
      'session-timeout-ms': { type: 'string' },
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
  const timeout = values['session-timeout-ms'];
  const server = new MockManagerServer({
    host: values.host,
    port: integer('port', values.port, 0, 65535),
    httpPort: integer('http-port', values['http-port'], 0, 65535),
    managerOptions: {
      sessionTimeoutMs:
        timeout === undefined
          ? undefined
          : integer('session-timeout-ms', timeout, 1, Number.MAX_SAFE_INTEGER),
      logger,
    },
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
  const { port, httpPort } = await starting;
  if (!stopping) process.stdout.write(`${JSON.stringify({ port, httpPort })}\n`);
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
