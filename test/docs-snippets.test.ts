// Code in the docs is code that compiles: every ```ts block of the
// integration guide, and of the README's Usage and Wazuh 5.0 sections, must appear verbatim
// in a `// #region <name>` ... `// #endregion <name>` of a file under
// examples/, which tsconfig.json type-checks (and test/examples.test.ts runs
// where it can). A snippet edited in the docs but not in its example, or the
// reverse, fails here.
//
// Import lines are matched on their own, anywhere in the same file: an import
// cannot sit inside the block an example needs around a snippet (to keep the
// formatter away from the README's aligned comments, or to run it in a function).
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const read = (path: string) => readFileSync(join(root, path), 'utf8');

interface Region {
  file: string;
  name: string;
  text: string;
}

/** Strip the indentation common to every non-blank line. */
function dedent(text: string): string {
  const lines = text.split('\n');
  const indents = lines.filter((l) => l.trim() !== '').map((l) => /^ */.exec(l)?.[0].length ?? 0);
  const common = Math.min(...indents);
  return lines.map((l) => l.slice(common)).join('\n');
}

function regions(file: string): Region[] {
  const found: Region[] = [];
  const pattern = /^[ \t]*\/\/ #region (\S+)\n([\s\S]*?)^[ \t]*\/\/ #endregion \1$/gm;
  for (const [, name, body] of read(file).matchAll(pattern)) {
    found.push({ file, name: name as string, text: dedent(body as string) });
  }
  return found;
}

function tsBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map(([, code]) => code as string);
}

/** From `heading` to the next heading of its level or a higher one. */
function section(markdown: string, heading: string): string {
  const start = markdown.indexOf(`\n${heading}\n`);
  if (start < 0) throw new Error(`no section ${heading}`);
  const level = /^#+/.exec(heading)?.[0].length ?? 2;
  const after = start + heading.length + 1;
  const next = markdown.slice(after).search(new RegExp(`\\n#{1,${level}} `));
  return markdown.slice(start, next < 0 ? undefined : after + next);
}

const exampleFiles = readdirSync(join(root, 'examples'))
  .filter((f) => f.endsWith('.ts'))
  .map((f) => `examples/${f}`);
const allRegions = exampleFiles.flatMap(regions);

/** Where the snippet lives, or why it does not. */
function locate(snippet: string): string {
  const lines = snippet.trimEnd().split('\n');
  const imports = lines.filter((l) => l.startsWith('import '));
  const body = lines
    .filter((l) => !l.startsWith('import '))
    .join('\n')
    .trim();
  for (const region of allRegions) {
    if (!region.text.includes(body)) continue;
    const fileLines = new Set(read(region.file).split('\n'));
    const missing = imports.filter((l) => !fileLines.has(l));
    if (missing.length === 0) return `${region.file}#${region.name}`;
    return `${region.file}#${region.name} lacks the snippet's ${missing.join(', ')}`;
  }
  return 'in no region of examples/*.ts';
}

const snippets = [
  ...tsBlocks(read('docs/integration-guide.md')).map((code, i) => ({
    where: `docs/integration-guide.md, ts block ${i + 1}`,
    code,
  })),
  ...tsBlocks(section(read('README.md'), '## Usage')).map((code, i) => ({
    where: `README.md Usage, ts block ${i + 1}`,
    code,
  })),
  ...tsBlocks(section(read('README.md'), '### Wazuh 5.0 (FullSession)')).map((code, i) => ({
    where: `README.md Wazuh 5.0, ts block ${i + 1}`,
    code,
  })),
];

describe('code in the docs', () => {
  it('the examples are type-checked', () => {
    const tsconfig = JSON.parse(read('tsconfig.json')) as { include: string[] };
    expect(tsconfig.include).toContain('examples');
  });

  it('finds the guide and the README snippets', () => {
    expect(snippets.filter((s) => s.where.startsWith('docs/')).length).toBeGreaterThanOrEqual(6);
    expect(snippets.filter((s) => s.where.startsWith('README.md Usage')).length).toBe(2);
    expect(snippets.filter((s) => s.where.startsWith('README.md Wazuh 5.0')).length).toBe(4);
  });

  it.each(snippets)('$where appears verbatim in an example region', ({ code }) => {
    expect(locate(code)).toMatch(/^examples\/[\w-]+\.ts#[\w-]+$/);
  });
});
