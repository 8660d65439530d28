// The benchmark suite: `npm run bench` prints a table, `npm run bench -- --json`
// one JSON object with stable keys. Every figure is the median of several runs
// taken in this one process run, next to its own baseline where it has one.
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { Builder } from 'flatbuffers';
import { AgentSyncProtocol, Mode, Operation, type SessionTransport } from '../src/index.js';
import {
  DEFAULT_MAX_SESSION_BYTES,
  estimateItemBytes,
  SESSION_OVERHEAD_BYTES,
  sessionBudget,
} from '../src/queue/sessions.js';
import { MockManager } from '../src/testing/index.js';
import { DataValue } from '../src/wire/generated/wazuh/sync-schema/data-value.js';
import { MessageEncoder, verifyMessage, WireOperation } from '../src/wire/index.js';
import {
  type DataValueInput,
  FullSessionEncoder,
  type StartFields,
  Mode as WireMode5,
  Operation as WireOperation5,
  Option as WireOption5,
} from '../src/wire-5/index.js';
import { HTTP_AGENTS, HTTP_ITEMS_PER_AGENT, httpAgents } from './http-agents.js';
import {
  AcceptingSessionTransport,
  changes,
  deltaUntilEmpty,
  documentOf,
  FULL_SESSION,
  INDEX,
  median,
  scratch,
  seconds,
} from './workload.js';

const args = process.argv.slice(2);
const json = args.includes('--json');
const runsArg = args.find((a) => a.startsWith('--runs='));
const RUNS = runsArg ? Number(runsArg.slice('--runs='.length)) : 3;
const here = dirname(fileURLToPath(import.meta.url));
const log = (message: string) => {
  if (!json) process.stderr.write(`${message}\n`);
};
const noTransport = { start() {}, send() {} };
/** A result as text; session ids are bigints, which JSON.stringify refuses. */
const show = (value: unknown) =>
  JSON.stringify(value, (_key, v) => (typeof v === 'bigint' ? v.toString() : v));

function repeat(name: string, run: () => number): number {
  const values: number[] = [];
  for (let i = 0; i < RUNS; i++) values.push(run());
  const value = median(values);
  log(`  ${name}: ${values.map((v) => v.toFixed(1)).join(', ')} -> ${value.toFixed(1)}`);
  return value;
}

/**
 * Runs `a` and its baseline `b` alternately, RUNS times each, so that both see the same moments
 * of a noisy machine. Returns both medians and the median of the per-pair ratios a/b.
 */
async function paired(
  nameA: string,
  a: () => number | Promise<number>,
  nameB: string,
  b: () => number | Promise<number>,
): Promise<{ a: number; b: number; ratio: number }> {
  const as: number[] = [];
  const bs: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    as.push(await a());
    bs.push(await b());
  }
  const ratios = as.map((v, i) => v / (bs[i] as number));
  for (const [name, values] of [
    [nameA, as],
    [nameB, bs],
  ] as const) {
    log(`  ${name}: ${values.map((v) => v.toFixed(1)).join(', ')} -> ${median(values).toFixed(1)}`);
  }
  log(
    `  ratio per pair: ${ratios.map((r) => r.toFixed(2)).join(', ')} -> ${median(ratios).toFixed(2)}`,
  );
  return { a: median(as), b: median(bs), ratio: median(ratios) };
}

function withAgent<T>(fn: (agent: AgentSyncProtocol, dir: string) => T): T {
  const { dir, dispose } = scratch();
  const agent = new AgentSyncProtocol({
    moduleName: 'bench',
    dbPath: join(dir, 'q.db'),
    transport: noTransport,
  });
  try {
    return fn(agent, dir);
  } finally {
    void agent.close();
    dispose();
  }
}

// ---- persistence -------------------------------------------------------------------------
const PERSIST_N = 50_000;
const BATCH_N = 100_000;
log('persistence (file database, WAL)');
const singleItems = changes(0, PERSIST_N);
// Both end with a read (pendingCount), so the changes still in the intent log are moved into
// SQLite inside the timed window: the rate includes all the work the calls cause.
const persist_single_per_s = repeat('persist_single_per_s', () =>
  withAgent((agent) => {
    const began = performance.now();
    for (const c of singleItems) agent.persistDifference(c.id, c.operation, c.index, c.data);
    if (agent.pendingCount !== PERSIST_N) throw new Error('persist_single lost changes');
    return PERSIST_N / seconds(began);
  }),
);
const coalesceItems = changes(0, PERSIST_N, Operation.Modify, 1);
const coalesce_per_s = repeat('coalesce_per_s', () =>
  withAgent((agent) => {
    for (const c of singleItems) agent.persistDifference(c.id, c.operation, c.index, c.data);
    const began = performance.now();
    for (const c of coalesceItems) agent.persistDifference(c.id, c.operation, c.index, c.data);
    if (agent.pendingCount !== PERSIST_N) throw new Error('coalesce lost changes');
    return PERSIST_N / seconds(began);
  }),
);
const batchItems = changes(0, BATCH_N);
const batch = await paired(
  'persist_batch_per_s',
  () =>
    withAgent((agent) => {
      const began = performance.now();
      agent.persistDifferences(batchItems);
      return BATCH_N / seconds(began);
    }),
  'raw_sqlite_batch_per_s',
  () => {
    const { dir, dispose } = scratch();
    const db = new Database(join(dir, 'raw.db'));
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.exec(
      'CREATE TABLE queue (id TEXT PRIMARY KEY, idx TEXT NOT NULL, operation INTEGER NOT NULL, data TEXT NOT NULL)',
    );
    const insert = db.prepare('INSERT INTO queue (id, idx, operation, data) VALUES (?, ?, ?, ?)');
    const began = performance.now();
    db.transaction(() => {
      for (const c of batchItems) insert.run(c.id, c.index, c.operation, c.data);
    })();
    const rate = BATCH_N / seconds(began);
    db.close();
    dispose();
    return rate;
  },
);
const { a: persist_batch_per_s, b: raw_sqlite_batch_per_s, ratio: persist_batch_over_raw } = batch;

/** A plain table holding `changes(0, n)`, as the raw pipelines read it. */
function rawQueue(dir: string, n: number): Database.Database {
  const db = new Database(join(dir, 'raw.db'));
  db.pragma('journal_mode = WAL');
  db.exec(
    'CREATE TABLE queue (id TEXT PRIMARY KEY, idx TEXT NOT NULL, operation INTEGER NOT NULL, data TEXT NOT NULL)',
  );
  const insert = db.prepare('INSERT INTO queue (id, idx, operation, data) VALUES (?, ?, ?, ?)');
  const fill = changes(0, n);
  db.transaction(() => {
    for (const c of fill) insert.run(c.id, c.index, c.operation, c.data);
  })();
  return db;
}

// ---- sync ---------------------------------------------------------------------------------
const SYNC_N = 100_000;
log(`sync of ${SYNC_N} queued items`);
const sync = await paired(
  'sync_msgs_per_s',
  async () => {
    const { dir, dispose } = scratch();
    const manager = new MockManager();
    const agent = new AgentSyncProtocol({
      moduleName: 'bench',
      dbPath: join(dir, 'q.db'),
      transport: manager.transport('bench'),
    });
    for (let from = 0; from < SYNC_N; from += 10_000)
      agent.persistDifferences(changes(from, 10_000));
    const began = performance.now();
    const result = await agent.synchronizeModule(Mode.Delta);
    // The mock writes the sessions that ended Ok into its index when it is next read; counting
    // its documents inside the window counts that work too. (Documents are parsed into objects
    // only when documents() returns them: the reader's cost, not the manager's.) Messages:
    // Start, the probe End, the items, End.
    const indexed = manager.documentCount();
    const rate = (SYNC_N + 3) / seconds(began);
    if (!result.ok || indexed !== SYNC_N) throw new Error(`sync failed: ${show(result)}`);
    await agent.close();
    await manager.close();
    dispose();
    return rate;
  },
  'raw_pipeline_msgs_per_s',
  () => {
    const { dir, dispose } = scratch();
    const db = rawQueue(dir, SYNC_N);
    const builder = new Builder(1024);
    let sink = 0;
    const noop = (bytes: Uint8Array) => {
      sink += bytes.length;
    };
    const began = performance.now();
    let seq = 0n;
    for (const row of db
      .prepare('SELECT id, idx, operation, data FROM queue ORDER BY rowid')
      .iterate() as Iterable<{
      id: string;
      idx: string;
      operation: number;
      data: string;
    }>) {
      builder.clear();
      const id = builder.createString(row.id);
      const index = builder.createString(row.idx);
      const data = builder.createString(row.data);
      DataValue.startDataValue(builder);
      DataValue.addSeq(builder, seq++);
      DataValue.addSession(builder, 0x1234_5678_9abc_def0n);
      DataValue.addOperation(
        builder,
        row.operation === 2 ? WireOperation.Delete : WireOperation.Upsert,
      );
      DataValue.addId(builder, id);
      DataValue.addIndex(builder, index);
      DataValue.addData(builder, data);
      builder.finish(DataValue.endDataValue(builder));
      noop(builder.asUint8Array());
    }
    const rate = SYNC_N / seconds(began);
    if (sink === 0) throw new Error('nothing encoded');
    db.close();
    dispose();
    return rate;
  },
);
const { a: sync_msgs_per_s, b: raw_pipeline_msgs_per_s, ratio: sync_over_raw_pipeline } = sync;

log(`Wazuh 5.0 Delta of ${SYNC_N} queued items (sessions of at most 5 MiB)`);
/** Persists SYNC_N items, then times Delta calls until the queue is empty; items per second. */
async function fullSessionDelta(
  transport: SessionTransport,
  indexed: () => number,
): Promise<number> {
  const { dir, dispose } = scratch();
  const agent = new AgentSyncProtocol({
    moduleName: 'bench',
    dbPath: join(dir, 'q.db'),
    ...FULL_SESSION,
    transport,
  });
  for (let from = 0; from < SYNC_N; from += 10_000) agent.persistDifferences(changes(from, 10_000));
  const began = performance.now();
  // One call sends at most 10 sessions; 100k items of ~300 bytes take about 17.
  await deltaUntilEmpty(agent);
  const count = indexed();
  const rate = SYNC_N / seconds(began);
  if (count !== SYNC_N) throw new Error(`5.0 Delta delivered ${count} of ${SYNC_N}`);
  await agent.close();
  dispose();
  return rate;
}
// The agent's side (queue, sessions, encoding) against the raw pipeline: sessions go to a
// stand-in in this process that answers 200 and keeps nothing.
const fullSession = await paired(
  'fs_delta_msgs_per_s',
  () => {
    const standIn = new AcceptingSessionTransport();
    return fullSessionDelta(standIn, () => standIn.received);
  },
  'fs_raw_pipeline_msgs_per_s',
  () => {
    const { dir, dispose } = scratch();
    const db = rawQueue(dir, SYNC_N);
    // The same sessions as the agent's: the same cut (estimate against the 5 MiB budget), the
    // same Start and items, one reused encoder; each session handed to a no-op.
    const encoder = new FullSessionEncoder();
    const start: StartFields = {
      module: 'bench',
      mode: WireMode5.ModuleDelta,
      index: [INDEX],
      option: WireOption5.Sync,
      architecture: 'x86_64',
      hostname: 'bench-host',
      osname: 'Debian GNU/Linux',
      osplatform: 'debian',
      ostype: 'linux',
      osversion: '12',
      agentversion: 'v5.0.0',
      agentname: 'bench-host',
      agentid: '001',
      groups: [],
      clusterName: 'wazuh',
    };
    const budget = sessionBudget(DEFAULT_MAX_SESSION_BYTES);
    let sink = 0;
    const values: DataValueInput[] = [];
    let estimated = SESSION_OVERHEAD_BYTES;
    const flush = () => {
      sink += encoder.encode(start, { type: 'SyncData', values }).length;
      values.length = 0;
      estimated = SESSION_OVERHEAD_BYTES;
    };
    const began = performance.now();
    for (const row of db
      .prepare('SELECT id, idx, operation, data FROM queue ORDER BY rowid')
      .iterate() as Iterable<{ id: string; idx: string; operation: number; data: string }>) {
      const item = estimateItemBytes(row.id, row.idx, row.data);
      if (estimated + item > budget && values.length > 0) flush();
      estimated += item;
      values.push({
        operation: row.operation === 2 ? WireOperation5.Delete : WireOperation5.Upsert,
        id: row.id,
        index: row.idx,
        data: row.data,
      });
    }
    if (values.length > 0) flush();
    const rate = SYNC_N / seconds(began);
    if (sink === 0) throw new Error('nothing encoded');
    db.close();
    dispose();
    return rate;
  },
);
const {
  a: fs_delta_msgs_per_s,
  b: fs_raw_pipeline_msgs_per_s,
  ratio: fs_delta_over_raw_pipeline,
} = fullSession;
// The same to the mock manager: its verifying, decoding and indexing of every item count too.
const fs_delta_mock_msgs_per_s = await (async () => {
  const values: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const manager = new MockManager();
    values.push(
      await fullSessionDelta(manager.sessionTransport(FULL_SESSION.agentInfo.id), () =>
        manager.documentCount(),
      ),
    );
    await manager.close();
  }
  log(`  fs_delta_mock_msgs_per_s: ${values.map((v) => v.toFixed(1)).join(', ')}`);
  return median(values);
})();

log(
  `Wazuh 5.0 over HTTP: ${HTTP_AGENTS} agents x ${HTTP_ITEMS_PER_AGENT} items, sessions of at most 64 KiB, to the mock manager command`,
);
const http = await httpAgents(RUNS, log);
const http_sessions_per_s = http.sessionsPerS;
const http_mb_per_s = http.mbPerS;
const http_mock_cpu_per_s = http.mockCpuPerS;
const http_agents_cpu_per_s = http.agentsCpuPerS;

log('sync of 100,000 and 1,000,000 items in child processes (manager stand-in keeps nothing)');
function childSync(
  count: number,
  wire: 'seed' | 'fullSession' = 'seed',
): { seconds: number; rssGrowthMiB: number } {
  const { dir, dispose } = scratch();
  const script = join(here, 'sync-scale.ts');
  try {
    execFileSync(process.execPath, [
      '--import',
      'tsx',
      script,
      'fill',
      join(dir, 'q.db'),
      String(count),
      wire,
    ]);
    const out = execFileSync(process.execPath, [
      '--expose-gc',
      '--import',
      'tsx',
      script,
      'sync',
      join(dir, 'q.db'),
      String(count),
      wire,
    ]);
    return JSON.parse(out.toString().trim().split('\n').at(-1) as string);
  } finally {
    dispose();
  }
}
/** 100k and 1M syncs in child processes, RUNS times: each one's time, and the 1M RSS growth. */
function scaleRuns(wire: 'seed' | 'fullSession'): { small: number; large: number; rss: number } {
  const small: number[] = [];
  const large: number[] = [];
  const rss: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    small.push(childSync(100_000, wire).seconds);
    const run = childSync(1_000_000, wire);
    large.push(run.seconds);
    rss.push(run.rssGrowthMiB);
    log(
      `  run ${i + 1}: 100k ${small.at(-1)?.toFixed(2)} s, 1M ${run.seconds.toFixed(2)} s, RSS +${run.rssGrowthMiB.toFixed(1)} MiB`,
    );
  }
  return { small: median(small), large: median(large), rss: median(rss) };
}
const scale = scaleRuns('seed');
const sync_rss_growth_mib_1m = scale.rss;
const sync_1m_over_100k_time_ratio = scale.large / scale.small;
// The agent's side alone: the same 100k sync to the stand-in instead of the mock manager.
const sync_stand_in_msgs_per_s = (100_000 + 3) / scale.small;

log(
  '5.0 Delta of 100,000 and 1,000,000 items in child processes (stand-in answers 200, keeps nothing)',
);
const scale5 = scaleRuns('fullSession');
const fs_rss_growth_mib_1m = scale5.rss;
const fs_1m_over_100k_time_ratio = scale5.large / scale5.small;

// ---- WAL growth ---------------------------------------------------------------------------
log('1,000,000 coalescing writes');
const wal_mib_after_coalesce = withAgent((agent, dir) => {
  const ids = 10_000;
  const docs = Array.from({ length: ids }, (_, i) => documentOf(i, 1));
  for (let n = 0; n < 1_000_000; n++) {
    const i = n % ids;
    agent.persistDifference(`pkg-${i}`, Operation.Modify, INDEX, docs[i] as string);
  }
  const mib = statSync(join(dir, 'q.db-wal')).size / 2 ** 20;
  log(`  wal_mib_after_coalesce: ${mib.toFixed(1)}`);
  return mib;
});

// ---- pacing -------------------------------------------------------------------------------
log('pacing: maxEps 2000 over 10,000 messages');
const eps = await (async () => {
  const { dir, dispose } = scratch();
  const manager = new MockManager();
  const inner = manager.transport('bench');
  const times: number[] = [];
  const transport = {
    start: () => inner.start(),
    send: (message: Uint8Array, module: string) => {
      times.push(performance.now());
      return inner.send(message, module);
    },
    onResponse: (listener: (m: Uint8Array) => void) => inner.onResponse(listener),
  };
  const agent = new AgentSyncProtocol({
    moduleName: 'bench',
    dbPath: join(dir, 'q.db'),
    transport,
  });
  // Start, the probe End, 9,997 items and End: 10,000 messages.
  agent.persistDifferences(changes(0, 9_997));
  const result = await agent.synchronizeModule(Mode.Delta, { maxEps: 2000 });
  if (!result.ok || times.length !== 10_000) throw new Error(`paced sync failed: ${show(result)}`);
  let windowMax = 0;
  let first = 0;
  for (let i = 0; i < times.length; i++) {
    while ((times[i] as number) - (times[first] as number) >= 1000) first++;
    windowMax = Math.max(windowMax, i - first + 1);
  }
  const achieved = (times.length - 1) / (((times.at(-1) as number) - (times[0] as number)) / 1000);
  await agent.close();
  await manager.close();
  dispose();
  log(`  eps_window_max: ${windowMax}, eps_achieved: ${achieved.toFixed(0)}`);
  return { windowMax, achieved };
})();

// ---- codec --------------------------------------------------------------------------------
log('codec');
const CODEC_N = 200_000;
const codecDoc = documentOf(7);
const encoder = new MessageEncoder();
const encode_msgs_per_s = repeat('encode_msgs_per_s', () => {
  const began = performance.now();
  for (let i = 0; i < CODEC_N; i++) {
    encoder.dataValue(
      BigInt(i),
      0x1234_5678_9abc_def0n,
      WireOperation.Upsert,
      `pkg-${i}`,
      INDEX,
      codecDoc,
    );
  }
  return CODEC_N / seconds(began);
});
const sample = encoder
  .dataValue(42n, 0x1234_5678_9abc_def0n, WireOperation.Upsert, 'pkg-42', INDEX, codecDoc)
  .slice();
const verify_msgs_per_s = repeat('verify_msgs_per_s', () => {
  const began = performance.now();
  for (let i = 0; i < CODEC_N; i++) {
    if (verifyMessage(sample) === null) throw new Error('sample does not verify');
  }
  return CODEC_N / seconds(began);
});

// ---- report -------------------------------------------------------------------------------
const figures = {
  persist_single_per_s,
  persist_batch_per_s,
  raw_sqlite_batch_per_s,
  persist_batch_over_raw,
  coalesce_per_s,
  sync_msgs_per_s,
  raw_pipeline_msgs_per_s,
  sync_over_raw_pipeline,
  sync_stand_in_msgs_per_s,
  sync_rss_growth_mib_1m,
  sync_1m_over_100k_time_ratio,
  fs_delta_msgs_per_s,
  fs_raw_pipeline_msgs_per_s,
  fs_delta_over_raw_pipeline,
  fs_delta_mock_msgs_per_s,
  http_sessions_per_s,
  http_mb_per_s,
  http_mock_cpu_per_s,
  http_agents_cpu_per_s,
  fs_rss_growth_mib_1m,
  fs_1m_over_100k_time_ratio,
  wal_mib_after_coalesce,
  eps_window_max: eps.windowMax,
  eps_achieved: eps.achieved,
  encode_msgs_per_s,
  verify_msgs_per_s,
};
const targets: Partial<Record<keyof typeof figures, [string, (v: number) => boolean]>> = {
  persist_single_per_s: ['>= 50000', (v) => v >= 50_000],
  persist_batch_over_raw: ['>= 0.7', (v) => v >= 0.7],
  sync_over_raw_pipeline: ['>= 0.6', (v) => v >= 0.6],
  sync_rss_growth_mib_1m: ['<= 64', (v) => v <= 64],
  sync_1m_over_100k_time_ratio: ['<= 12', (v) => v <= 12],
  fs_delta_over_raw_pipeline: ['>= 0.6', (v) => v >= 0.6],
  fs_rss_growth_mib_1m: ['<= 64', (v) => v <= 64],
  fs_1m_over_100k_time_ratio: ['<= 12', (v) => v <= 12],
  wal_mib_after_coalesce: ['<= 64', (v) => v <= 64],
  eps_window_max: ['<= 2000', (v) => v <= 2000],
  eps_achieved: ['>= 1900', (v) => v >= 1900],
};

if (json) {
  console.log(
    JSON.stringify(
      Object.fromEntries(Object.entries(figures).map(([k, v]) => [k, Number(v.toFixed(3))])),
    ),
  );
} else {
  console.log(`\n${'figure'.padEnd(30)} ${'value'.padStart(14)}  target`);
  for (const [name, value] of Object.entries(figures)) {
    const target = targets[name as keyof typeof figures];
    const shown = value >= 100 ? Math.round(value).toLocaleString('en-US') : value.toFixed(2);
    const verdict = target ? `${target[0]} ${target[1](value) ? 'ok' : 'MISSED'}` : '';
    console.log(`${name.padEnd(30)} ${shown.padStart(14)}  ${verdict}`);
  }
  console.log(`\nmedian of ${RUNS} runs each; node ${process.version}, ${process.arch}`);
}
