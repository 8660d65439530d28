// The typings of agent-sync-protocol/testing as a user sees them: every public symbol declared
// in src/testing/ carries a doc comment (members and constructors too), and the emitted .d.ts
// shows no private member.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const entry = join(root, 'src', 'testing', 'index.ts');
const testingDir = join(root, 'src', 'testing');

const program = ts.createProgram([entry], {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  strict: true,
  skipLibCheck: true,
  declaration: true,
  emitDeclarationOnly: true,
  types: ['node'],
});
const checker = program.getTypeChecker();

const ours = (symbol: ts.Symbol) =>
  (symbol.declarations ?? []).some((d) => d.getSourceFile().fileName.startsWith(testingDir));

const documented = (symbol: ts.Symbol) => symbol.getDocumentationComment(checker).length > 0;

function isPublicMember(symbol: ts.Symbol): boolean {
  if (symbol.name.startsWith('#')) return false; // an ECMAScript #private member
  return !(symbol.declarations ?? []).some(
    (d) => ts.getCombinedModifierFlags(d) & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected),
  );
}

/** `Name` or `Name.member` of every public symbol of the entry without a doc comment. */
function undocumented(): string[] {
  const source = program.getSourceFile(entry) as ts.SourceFile;
  const module = checker.getSymbolAtLocation(source) as ts.Symbol;
  const missing: string[] = [];
  for (const exported of checker.getExportsOfModule(module)) {
    const symbol =
      exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
    if (!ours(symbol)) continue;
    if (!documented(symbol)) missing.push(exported.name);
    if (!(symbol.flags & (ts.SymbolFlags.Class | ts.SymbolFlags.Interface))) continue;
    for (const member of checker.getPropertiesOfType(checker.getDeclaredTypeOfSymbol(symbol))) {
      if (isPublicMember(member) && !documented(member)) {
        missing.push(`${exported.name}.${member.name}`);
      }
    }
    for (const ctor of symbol.members?.get(ts.InternalSymbolName.Constructor)?.declarations ?? []) {
      if (ts.getJSDocCommentsAndTags(ctor).length === 0)
        missing.push(`${exported.name}.constructor`);
    }
  }
  return missing;
}

describe('agent-sync-protocol/testing typings', () => {
  it('document every public symbol, member and constructor', () => {
    expect(undocumented()).toEqual([]);
  });

  it('show no private member in the emitted .d.ts', () => {
    const declarations = new Map<string, string>();
    program.emit(undefined, (name, text) => declarations.set(name, text), undefined, true);
    const leaks: string[] = [];
    for (const [name, text] of declarations) {
      if (!name.includes('/testing/')) continue;
      for (const line of text.split('\n')) {
        if (/^\s*(private|protected)\b/.test(line)) leaks.push(`${name}: ${line.trim()}`);
      }
    }
    expect(declarations.size).toBeGreaterThan(0);
    expect(leaks).toEqual([]);
  });
});
