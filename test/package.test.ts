// Package hygiene: what `npm pack` ships, and that the tarball installs and
// works in an empty project without network access.
//
// Offline install: `npm install --offline` resolves every dependency from
// npm's local cache (filled by this repo's own `npm ci`, which caches the
// registry metadata too when the lockfile has no `resolved` URLs), and
// `--ignore-scripts` skips compiling better-sqlite3 (about a minute) and
// unix-dgram. Their compiled addons are then copied from this repo's
// node_modules when the versions match (the packages themselves come from
// the tarball's install, so only the build output is borrowed); a version
// mismatch falls back to linking this repo's whole package.
//
// Should the cache lack that metadata (ENOTCACHED), the test says so and
// installs by hand instead: the tarball unpacked as the package, its runtime
// dependencies linked from this repo. The file list, the imports and the bin
// are checked either way; only npm's own resolution is then not.
import { execFile } from 'node:child_process';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const work = mkdtempSync(join(tmpdir(), 'asp-pack-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const NATIVE: Record<string, string> = {
  'better-sqlite3': 'build/Release/better_sqlite3.node',
  'unix-dgram': 'build/Release/unix_dgram.node',
};

function version(packageDir: string): string {
  return (JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as { version: string })
    .version;
}

/** Give an install made with --ignore-scripts the compiled addon it skipped. */
function borrowNativeBuild(project: string, name: string, addon: string): void {
  const ours = join(root, 'node_modules', name);
  const theirs = join(project, 'node_modules', name);
  if (version(ours) === version(theirs)) {
    mkdirSync(dirname(join(theirs, addon)), { recursive: true });
    copyFileSync(join(ours, addon), join(theirs, addon));
  } else {
    rmSync(theirs, { recursive: true, force: true });
    symlinkSync(ours, theirs, 'dir');
  }
}

/** The fallback install: returns the path of the bin script. */
async function installByHand(project: string, tarballPath: string): Promise<string> {
  const target = join(project, 'node_modules', 'agent-sync-protocol');
  rmSync(join(project, 'node_modules'), { recursive: true, force: true });
  mkdirSync(target, { recursive: true });
  await run('tar', ['-xzf', tarballPath, '--strip-components=1', '-C', target]);
  const manifest = JSON.parse(readFileSync(join(target, 'package.json'), 'utf8')) as {
    dependencies?: Record<string, string>;
    optionalDependencies?: Record<string, string>;
  };
  for (const name of Object.keys({ ...manifest.dependencies, ...manifest.optionalDependencies })) {
    symlinkSync(join(root, 'node_modules', name), join(project, 'node_modules', name), 'dir');
  }
  return join(target, 'dist/bin/mock-manager.js');
}

const CONSUMER = `
import { AgentSyncProtocol, Mode, Operation, TcpTransport, WazuhQueueTransport, WazuhResponseListener } from 'agent-sync-protocol';
import { MockManager, MockManagerServer } from 'agent-sync-protocol/testing';

for (const exported of [TcpTransport, WazuhQueueTransport, WazuhResponseListener, MockManagerServer]) {
  if (typeof exported !== 'function') throw new Error('missing export');
}
const manager = new MockManager();
const sync = new AgentSyncProtocol({
  moduleName: 'fim',
  dbPath: ':memory:',
  transport: manager.transport('fim'),
  agentInfo: { id: '001' },
});
sync.persistDifference('/etc/hosts', Operation.Create, 'fim-files', JSON.stringify({ size: 1 }));
const result = await sync.synchronizeModule(Mode.Delta);
if (!result.ok || manager.documents().length !== 1) throw new Error(JSON.stringify(result));
await sync.close();
await manager.close();
// The optional native dependency loads from the installed package too.
const queue = new WazuhQueueTransport({ socketPath: '/nonexistent/queue' });
await queue.start().then(
  () => { throw new Error('connected to nothing'); },
  (error) => { if (!/ENOENT/.test(error.message)) throw error; },
);
console.log('ok');
`;

// A CommonJS consumer: require() of the ES module build, through the exports
// map's "default" condition (Node >= 20.19 loads ES modules synchronously when
// their graph has no top-level await; ERR_REQUIRE_ASYNC_MODULE would say it has).
const CJS_CONSUMER = `
const { AgentSyncProtocol, Mode, Operation } = require('agent-sync-protocol');
const { MockManager } = require('agent-sync-protocol/testing');
const manager = new MockManager();
const sync = new AgentSyncProtocol({
  moduleName: 'fim',
  dbPath: ':memory:',
  transport: manager.transport('fim'),
  agentInfo: { id: '001' },
});
sync.persistDifference('/etc/hosts', Operation.Create, 'fim-files', JSON.stringify({ size: 1 }));
sync.synchronizeModule(Mode.Delta).then(async (result) => {
  if (!result.ok || manager.documents().length !== 1) throw new Error(JSON.stringify(result));
  await sync.close();
  await manager.close();
  console.log('ok');
});
`;

const TYPED_CONSUMER = `
import { AgentSyncProtocol, Mode, type SyncResult, TcpTransport } from 'agent-sync-protocol';
import { MockManager, type StoredDocument } from 'agent-sync-protocol/testing';
const manager = new MockManager();
const sync = new AgentSyncProtocol({ moduleName: 'fim', dbPath: ':memory:', transport: manager.transport('fim') });
const result: Promise<SyncResult> = sync.synchronizeModule(Mode.Delta);
const docs: StoredDocument[] = manager.documents();
const tcp: TcpTransport = new TcpTransport({ port: 1514 });
void result; void docs; void tcp;
`;

describe('the npm package', () => {
  it('packs only what it should and works installed offline', { timeout: 120_000 }, async () => {
    // `npm pack` runs the `prepare` script, which builds dist/.
    await run('npm', ['pack', '--pack-destination', work], { cwd: root, maxBuffer: 64 << 20 });
    const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'));
    expect(tarball).toBeDefined();
    const tarballPath = join(work, tarball as string);

    const { stdout: listing } = await run('tar', ['-tzf', tarballPath], { maxBuffer: 64 << 20 });
    const files = listing
      .split('\n')
      .filter((f) => f.length > 0 && !f.endsWith('/'))
      .map((f) => f.replace(/^package\//, ''));
    const allowed = (f: string) =>
      /^(dist|schemas|docs|examples)\//.test(f) ||
      ['README.md', 'CHANGELOG.md', 'LICENSE', 'package.json'].includes(f);
    expect(files.filter((f) => !allowed(f))).toEqual([]);
    expect(files.filter((f) => f.startsWith('docs/api/'))).toEqual([]);
    expect(files.filter((f) => f.endsWith('.map'))).toEqual([]);
    for (const expected of [
      'package.json',
      'README.md',
      'CHANGELOG.md',
      'LICENSE',
      'schemas/inventorySync.fbs',
      'dist/index.js',
      'dist/index.d.ts',
      'dist/testing/index.js',
      'dist/testing/index.d.ts',
      'dist/bin/mock-manager.js',
      'docs/transports.md',
      'docs/troubleshooting.md',
      // The docs link to the examples.
      'examples/integration-guide.ts',
    ]) {
      expect(files).toContain(expected);
    }
    expect(readFileSync(join(root, 'dist/bin/mock-manager.js'), 'utf8')).toMatch(
      /^#!\/usr\/bin\/env node\n/,
    );

    const project = join(work, 'consumer');
    mkdirSync(project);
    writeFileSync(
      join(project, 'package.json'),
      JSON.stringify({ name: 'consumer', private: true, type: 'module' }),
    );
    let bin = join(project, 'node_modules/.bin/agent-sync-mock-manager');
    try {
      await run(
        'npm',
        ['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts', tarballPath],
        { cwd: project, maxBuffer: 64 << 20 },
      );
      for (const [name, addon] of Object.entries(NATIVE)) borrowNativeBuild(project, name, addon);
      // The bin is linked and executable.
      expect(statSync(bin).mode & 0o111).not.toBe(0);
    } catch (error) {
      if (!String((error as { stderr?: string }).stderr).includes('ENOTCACHED')) throw error;
      console.warn('npm cache lacks registry metadata: installing the tarball by hand');
      bin = await installByHand(project, tarballPath);
    }

    writeFileSync(join(project, 'consumer.mjs'), CONSUMER);
    const { stdout } = await run(process.execPath, ['consumer.mjs'], { cwd: project });
    expect(stdout.trim()).toBe('ok');

    writeFileSync(join(project, 'consumer.cjs'), CJS_CONSUMER);
    const { stdout: required } = await run(process.execPath, ['consumer.cjs'], { cwd: project });
    expect(required.trim()).toBe('ok');

    // The declarations resolve through the exports map for a TypeScript consumer.
    writeFileSync(join(project, 'consumer.ts'), TYPED_CONSUMER);
    await run(
      process.execPath,
      [
        join(root, 'node_modules/typescript/bin/tsc'),
        '--noEmit',
        '--strict',
        '--module',
        'nodenext',
        '--moduleResolution',
        'nodenext',
        '--target',
        'es2022',
        '--typeRoots',
        join(root, 'node_modules/@types'),
        '--types',
        'node',
        'consumer.ts',
      ],
      { cwd: project },
    );

    const { stdout: help } = await run(process.execPath, [bin, '--help'], { cwd: project });
    expect(help).toContain('Usage: agent-sync-mock-manager');
  });
});
