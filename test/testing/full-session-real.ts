// Runs the steps of full-session-cases.ts against the REAL Wazuh 5.0 manager module and against
// the mock, and compares answers and stored documents. Not a test: the project's tests must not
// need the real manager. It needs the harness of /work/shared/wazuh-5-manager (the module's own
// sources at wazuh/wazuh f838614611, booted through its C ABI, with an in-memory indexer):
//
//   ISS_BIN=/tmp/iss-build/bin/iss-fake-server npx tsx test/testing/full-session-real.ts [--write]
//
// --write records the real answers and store in full-session-real.json, which
// full-session.test.ts replays on the mock. See docs/mock-manager-5.md for the results.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { MockManager } from '../../src/testing/index.js';
import {
  BUDGET,
  CLUSTER,
  type RealRun,
  type Step,
  steps,
  VD_FEED_OFFSET,
} from './full-session-cases.js';

const here = dirname(fileURLToPath(import.meta.url));
const FIXTURE = join(here, 'full-session-real.json');
const bin = process.env.ISS_BIN ?? '/tmp/iss-build/bin/iss-fake-server';

interface Answer {
  status: number;
  body: string;
  retryAfter?: string;
}

/** One request over the Unix socket, head and body in one write as remoted sends it. */
function post(socketPath: string, step: Step): Promise<Answer> {
  const head = [
    'POST /stateful HTTP/1.1',
    'Host: localhost',
    'Connection: close',
    `Content-Length: ${step.body.length}`,
    'Content-Type: application/octet-stream',
    ...(step.agentId === '' ? [] : [`X-Wazuh-Agent-Id: ${step.agentId}`]),
    'X-Session-Id: mock5-compare',
    'protocol-version: 1',
    '',
    '',
  ].join('\r\n');
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect(socketPath);
    const done = () => {
      const raw = Buffer.concat(chunks).toString('latin1');
      const split = raw.indexOf('\r\n\r\n');
      if (split < 0) {
        reject(new Error(`${step.name}: no answer (${raw.length} bytes)`));
        return;
      }
      const lines = raw.slice(0, split).split('\r\n');
      const status = Number(lines[0]?.split(' ')[1]);
      const retry = lines.find((l) => l.toLowerCase().startsWith('retry-after:'));
      const body = Buffer.from(raw.slice(split + 4), 'latin1').toString('utf8');
      resolve({ status, body, ...(retry ? { retryAfter: retry.split(':')[1]?.trim() } : {}) });
    };
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('end', done);
    // A 413 closes without reading the body: the write fails, the answer is already in.
    socket.on('error', () => {
      if (chunks.length > 0) done();
      else reject(new Error(`${step.name}: connection failed`));
    });
    if (step.body.length <= 65536) {
      socket.write(Buffer.concat([Buffer.from(head, 'latin1'), step.body]));
      return;
    }
    // A large body: the head first, and the body only if the manager has not answered at
    // headers-complete (a 413 closes without draining, which would lose the answer).
    socket.write(head);
    setTimeout(() => {
      if (chunks.length === 0) socket.write(step.body);
    }, 200);
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function runReal(list: Step[]): Promise<RealRun> {
  const dir = mkdtempSync(join(tmpdir(), 'mock5-real-'));
  const socketPath = join(dir, 'iss.sock');
  const dump = join(dir, 'dump.json');
  const server = spawn(
    bin,
    [
      ...['--socket', socketPath, '--cluster', CLUSTER, '--dump', dump],
      ...['--max-inflight-bytes', String(BUDGET), '--vd-feed-offset', String(VD_FEED_OFFSET)],
      ...['--log-level', 'error', '--sync-workers', '1'],
    ],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  try {
    for (let i = 0; !existsSync(socketPath); i++) {
      if (i > 200) throw new Error('the real manager did not open its socket');
      await sleep(50);
    }
    await sleep(200);
    const answers: RealRun['answers'] = {};
    let up = true;
    for (const step of list) {
      if (step.indexer !== undefined && (step.indexer === 'up') !== up) {
        server.kill('SIGUSR2');
        up = !up;
        await sleep(100);
      }
      // The manager frees a request's share of the in-flight budget a moment after answering
      // it: a body declaring the whole budget right behind another request may get 503
      // "Server is out of capacity".
      if (step.body.length > 65536) await sleep(300);
      answers[step.name] = await post(socketPath, step);
    }
    server.kill('SIGUSR1');
    await sleep(300);
    const dumped = JSON.parse(readFileSync(dump, 'utf8')) as { indices: RealRun['store'] };
    return {
      source:
        'wazuh/wazuh f83861461173de20da5e569229113687a495ffce, inventory_sync_server via /work/shared/wazuh-5-manager (iss-fake-server)',
      answers,
      store: dumped.indices,
    };
  } finally {
    server.kill('SIGTERM');
  }
}

/** The mock's run of the same steps: its answers and its store, in the real run's shape. */
export async function runMock(list: Step[]): Promise<Omit<RealRun, 'source'>> {
  const manager = new MockManager({
    clusterName: CLUSTER,
    maxInflightBytes: BUDGET,
    vdFeedOffset: VD_FEED_OFFSET,
  });
  const answers: RealRun['answers'] = {};
  for (const step of list) {
    if (step.indexer !== undefined) manager.setIndexerAvailable(step.indexer === 'up');
    const answer = await manager.stateful(step.body, { agentId: step.agentId });
    answers[step.name] = {
      status: answer.status,
      body: answer.body,
      ...(answer.retryAfterSeconds === undefined
        ? {}
        : { retryAfter: String(answer.retryAfterSeconds) }),
    };
  }
  const store: RealRun['store'] = {};
  for (const doc of manager.documents()) {
    store[doc.index] ??= {};
    (store[doc.index] as Record<string, unknown>)[doc.id] = doc.data;
  }
  await manager.close();
  return { answers, store };
}

/**
 * Documents whose comparison says nothing: the real harness's indexer only journals
 * update-by-query (the metadata/group scripts), so agent 50's documents differ by design.
 */
export const UNCOMPARED_DOCUMENT = (id: string): boolean => id.startsWith(`${CLUSTER}_050_`);

/** Differences between two runs, one line each. */
export function compare(real: Omit<RealRun, 'source'>, mock: Omit<RealRun, 'source'>): string[] {
  const out: string[] = [];
  for (const [name, answer] of Object.entries(real.answers)) {
    const other = mock.answers[name];
    if (!isDeepStrictEqual(answer, other)) {
      out.push(`${name}: real ${JSON.stringify(answer)}, mock ${JSON.stringify(other)}`);
    }
  }
  const indices = new Set([...Object.keys(real.store), ...Object.keys(mock.store)]);
  for (const index of indices) {
    const a = real.store[index] ?? {};
    const b = mock.store[index] ?? {};
    for (const id of new Set([...Object.keys(a), ...Object.keys(b)])) {
      if (UNCOMPARED_DOCUMENT(id)) continue;
      if (!isDeepStrictEqual(a[id], b[id])) {
        out.push(`${index}/${id}: real ${JSON.stringify(a[id])}, mock ${JSON.stringify(b[id])}`);
      }
    }
  }
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const list = steps();
  const real = await runReal(list);
  const mock = await runMock(list);
  for (const step of list) {
    const r = real.answers[step.name];
    console.log(
      `${step.name.padEnd(52)} ${r?.status} ${r?.body}${r?.retryAfter ? ` Retry-After ${r.retryAfter}` : ''}`,
    );
  }
  const differences = compare(real, mock);
  console.log(
    differences.length === 0
      ? '\nmock = real'
      : `\n${differences.length} difference(s):\n${differences.join('\n')}`,
  );
  if (process.argv.includes('--write')) {
    writeFileSync(FIXTURE, `${JSON.stringify(real, null, 1)}\n`);
    console.log(`wrote ${FIXTURE}`);
  }
}
