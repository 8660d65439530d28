// The standalone mock manager (the `agent-sync-mock-manager` command, src/bin/mock-manager.ts) as
// a child process, for tests and the benchmark that drive it the way an outside rig does: flags,
// its ready line, and its HTTP endpoints. No vitest here (the benchmark loads it too).
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { request } from 'node:http';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = join(ROOT, 'src', 'bin', 'mock-manager.ts');

/** The ready line the command prints. */
export interface MockCliReady {
  port: number;
  httpPort: number;
  seed: number;
  statefulSocketPath?: string;
}

export interface MockCli {
  child: ChildProcess;
  ready: MockCliReady;
  /** A JSON request to its HTTP port: the status and the parsed body. */
  json<T = unknown>(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: T }>;
  /** SIGTERM, and wait for the exit (SIGKILL if it has not exited within 10 s). */
  stop(): Promise<void>;
}

/** The command as a child process with `args`, its stdout and stderr piped. */
export function spawnMockCli(args: readonly string[]): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', BIN, ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Spawn the command with `args`; resolves once its ready line is read. */
export async function startMockCli(args: readonly string[]): Promise<MockCli> {
  const child = spawnMockCli(args);
  let err = '';
  child.stderr?.on('data', (chunk) => {
    err += chunk;
  });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const exited = once(child, 'exit').then(([code]) => {
    throw new Error(`agent-sync-mock-manager exited ${code} before it was ready: ${err}`);
  });
  const [line] = (await Promise.race([once(lines, 'line'), exited])) as [string];
  lines.close();
  const ready = JSON.parse(line) as MockCliReady;
  return {
    child,
    ready,
    json: (method, path, body) => httpJson({ port: ready.httpPort }, method, path, body),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = once(child, 'exit');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await gone;
      clearTimeout(timer);
    },
  };
}

/** Where a request goes: an HTTP port on 127.0.0.1, or a Unix socket. */
export type HttpTarget = { port: number } | { socketPath: string };

/** One JSON request to `target` on a fresh connection: the status and the parsed body. */
export function httpJson<T = unknown>(
  target: HttpTarget,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: T }> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const where = 'port' in target ? { host: '127.0.0.1', port: target.port } : target;
  return new Promise((resolve, reject) => {
    const req = request({ ...where, method, path, agent: false }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', reject);
      response.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({
          status: response.statusCode ?? 0,
          body: (text ? JSON.parse(text) : undefined) as T,
        });
      });
    });
    req.on('error', reject);
    if (payload !== undefined) req.setHeader('Content-Type', 'application/json');
    req.end(payload);
  });
}

/**
 * Run the TypeScript `script` (through tsx) with `args` until it exits; resolves with the JSON of
 * its last stdout line, rejects with its stderr when it exits non-zero.
 */
export function runJsonChild<T>(script: string, args: readonly string[]): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
    });
    child.stderr.on('data', (chunk) => {
      err += chunk;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`${script} ${args.join(' ')} exited ${code}: ${err}`));
      else resolve(JSON.parse(out.trim().split('\n').at(-1) as string) as T);
    });
  });
}
