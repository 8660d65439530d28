// The API reference builds without a warning: every {@link} resolves, every
// type a public signature names is exported, and every file the README and
// docs/*.md link to can be copied into the output (TypeDoc renders docs/*.md
// as project documents and copies other linked files; a directory it cannot).
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

it('TypeDoc builds the reference from typedoc.json without warnings', {
  timeout: 120_000,
}, async () => {
  const typedoc = join(root, 'node_modules/typedoc/bin/typedoc');
  const result = await promisify(execFile)(
    process.execPath,
    [typedoc, '--emit', 'none', '--treatWarningsAsErrors'],
    { cwd: root, maxBuffer: 16 << 20 },
  ).catch((error: { stdout?: string; stderr?: string; code?: number }) => error);
  expect(`${result.stdout ?? ''}${result.stderr ?? ''}`).not.toMatch(/\[(warning|error)\]/);
  expect((result as { code?: number }).code ?? 0).toBe(0);
});
