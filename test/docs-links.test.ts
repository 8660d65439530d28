// Every relative link in the README and docs/*.md must resolve inside the
// npm package: npm and TypeDoc show these files from the package (TypeDoc
// copies linked .md files as they are), where a link to a file that was not
// packed is a dead link. Absolute URLs are not checked. A link with a
// #fragment to a Markdown file must name one of its headings.
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
let packed: Set<string>;

beforeAll(async () => {
  // --ignore-scripts: no build; dist/ is listed only if built, and no doc links into it.
  const { stdout } = await promisify(execFile)(
    'npm',
    ['pack', '--dry-run', '--json', '--ignore-scripts'],
    { cwd: root, maxBuffer: 16 << 20 },
  );
  const [pack] = JSON.parse(stdout) as [{ files: { path: string }[] }];
  packed = new Set(pack.files.map((f) => f.path));
});

const documents = [
  'README.md',
  ...readdirSync(join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

/** Links outside code: inline `[text](target)` and reference definitions `[x]: target`. */
function links(markdown: string): string[] {
  const prose = markdown.replace(/^```[\s\S]*?^```$/gm, '').replace(/`[^`\n]*`/g, '');
  const inline = [...prose.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)];
  const reference = [...prose.matchAll(/^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/gm)];
  return [...inline, ...reference].map((m) => m[1] as string);
}

/** GitHub's heading anchors (which TypeDoc's Markdown output follows too). */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  const text = markdown.replace(/^```[\s\S]*?^```$/gm, '');
  for (const [, heading] of text.matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const base = (heading as string)
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    result.add(n === 0 ? base : `${base}-${n}`);
  }
  return result;
}

/** Why `target`, linked from `from`, does not resolve in the package; undefined when it does. */
function problem(from: string, target: string): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return undefined; // https:, mailto:, ...
  const [pathPart, fragment] = target.split('#', 2) as [string, string | undefined];
  const path = pathPart === '' ? from : normalize(join(dirname(from), decodeURI(pathPart)));
  // A directory will not do: TypeDoc copies linked files, not directories.
  if (!packed.has(path)) return `${path} is not a file in the package`;
  if (fragment !== undefined && path.endsWith('.md')) {
    const headings = anchors(readFileSync(join(root, path), 'utf8'));
    if (!headings.has(fragment)) return `${path} has no heading #${fragment}`;
  }
  return undefined;
}

describe('links in the packed documentation', () => {
  it('packs the README and every docs/*.md', () => {
    for (const document of documents) expect(packed).toContain(document);
  });

  it.each(documents)('%s links only to what the package holds', (document) => {
    const targets = links(readFileSync(join(root, document), 'utf8'));
    const broken = targets
      .map((target) => [target, problem(document, target)] as const)
      .filter(([, why]) => why !== undefined)
      .map(([target, why]) => `${target}: ${why}`);
    expect(broken).toEqual([]);
  });

  it('finds links the way a reader sees them', () => {
    expect(links('[a](x.md) `[b](y.md)` [c](<z.md> "t")\n```\n[d](w.md)\n```\n[e]: v.md')).toEqual([
      'x.md',
      'z.md',
      'v.md',
    ]);
    expect([
      ...anchors("## What depends on the manager's build\n### `invalid-mode`\n## A\n## A"),
    ]).toEqual(['what-depends-on-the-managers-build', 'invalid-mode', 'a', 'a-1']);
  });
});
