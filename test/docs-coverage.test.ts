// Every public symbol has a doc comment, and the published declarations show
// no `private` members.
//
// Public = exported from src/index.ts or src/testing/index.ts (the package's
// entry points), with their members: constructors, public methods, properties
// and accessors of classes, fields of interfaces and object types, enum
// members. A declaration tagged @internal is left out, as TypeDoc leaves it out.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const ENTRY_POINTS = ['src/index.ts', 'src/testing/index.ts'];

function program(): ts.Program {
  const configPath = join(root, 'tsconfig.build.json');
  const config = ts.readConfigFile(configPath, ts.sys.readFile);
  const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, root);
  return ts.createProgram(parsed.fileNames, parsed.options);
}

const documented = (node: ts.Node): boolean =>
  ts.getJSDocCommentsAndTags(node).some((doc) => ts.isJSDoc(doc) && hasText(doc));

function hasText(doc: ts.JSDoc): boolean {
  const text = ts.getTextOfJSDocComment(doc.comment)?.trim() ?? '';
  return text !== '' || (doc.tags ?? []).some((t) => ts.getTextOfJSDocComment(t.comment));
}

const internal = (node: ts.Node): boolean =>
  ts.getJSDocTags(node).some((tag) => tag.tagName.text === 'internal');

function isPublicMember(member: ts.ClassElement): boolean {
  if (member.name && ts.isPrivateIdentifier(member.name)) return false;
  if (ts.isClassStaticBlockDeclaration(member) || ts.isSemicolonClassElement(member)) return false;
  const flags = ts.getCombinedModifierFlags(member as ts.Declaration);
  return (flags & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) === 0;
}

/** `Name` or `Name.member` for each public declaration without a doc comment. */
function undocumented(prog: ts.Program): string[] {
  const checker = prog.getTypeChecker();
  const missing = new Set<string>();
  const where = (node: ts.Node) => node.getSourceFile().fileName.slice(root.length + 1);
  const report = (name: string, node: ts.Node) => missing.add(`${name} (${where(node)})`);

  const members = (name: string, list: ts.NodeArray<ts.TypeElement>) => {
    for (const member of list) {
      if (internal(member) || documented(member)) continue;
      const key = member.name ? member.name.getText() : ts.SyntaxKind[member.kind];
      report(`${name}.${key}`, member);
    }
  };

  const visit = (name: string, declaration: ts.Declaration) => {
    if (internal(declaration)) return;
    // A variable's doc comment sits on its statement.
    const holder = ts.isVariableDeclaration(declaration) ? declaration.parent.parent : declaration;
    if (!documented(holder)) report(name, declaration);
    if (ts.isClassDeclaration(declaration)) {
      for (const member of declaration.members) {
        if (!isPublicMember(member) || internal(member) || documented(member)) continue;
        // Overloads: one comment on any signature documents the method.
        const key = ts.isConstructorDeclaration(member) ? 'constructor' : member.name?.getText();
        report(`${name}.${key}`, member);
      }
    } else if (ts.isInterfaceDeclaration(declaration)) {
      members(name, declaration.members);
    } else if (ts.isTypeAliasDeclaration(declaration) && ts.isTypeLiteralNode(declaration.type)) {
      members(name, declaration.type.members);
    } else if (ts.isEnumDeclaration(declaration)) {
      for (const member of declaration.members) {
        if (!internal(member) && !documented(member)) {
          report(`${name}.${member.name.getText()}`, member);
        }
      }
    }
  };

  for (const entry of ENTRY_POINTS) {
    const source = prog.getSourceFile(join(root, entry));
    const moduleSymbol = source && checker.getSymbolAtLocation(source);
    if (!moduleSymbol) throw new Error(`cannot read ${entry}`);
    for (const exported of checker.getExportsOfModule(moduleSymbol)) {
      const symbol =
        exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
      for (const declaration of symbol.declarations ?? []) {
        // Overloaded functions: the first signature carries the comment.
        if (ts.isFunctionDeclaration(declaration) && declaration !== symbol.declarations?.[0]) {
          continue;
        }
        visit(exported.name, declaration);
      }
    }
  }
  return [...missing].sort();
}

/** The .d.ts files tsconfig.build.json would emit, in memory. */
function declarations(prog: ts.Program): Map<string, string> {
  const out = new Map<string, string>();
  prog.emit(
    undefined,
    (fileName, text) => {
      if (fileName.endsWith('.d.ts')) out.set(fileName.slice(root.length + 1), text);
    },
    undefined,
    true,
  );
  return out;
}

describe('public API documentation', () => {
  let built: ts.Program | undefined;
  const prog = () => {
    built ??= program();
    return built;
  };

  it('every public symbol and member has a doc comment', () => {
    const missing = undocumented(prog());
    if (missing.length > 0) console.log(`undocumented:\n${missing.join('\n')}`);
    expect(missing).toEqual([]);
  });

  it('the emitted declarations show no private members', () => {
    const leaks: string[] = [];
    for (const [file, text] of declarations(prog())) {
      for (const line of text.split('\n')) {
        if (/^\s*(?:(?:static|readonly)\s+)*private\s/.test(line))
          leaks.push(`${file}: ${line.trim()}`);
      }
    }
    if (leaks.length > 0) console.log(`private in .d.ts:\n${leaks.join('\n')}`);
    expect(leaks).toEqual([]);
  });
});

// Always on: the checks above find what they are meant to find.
describe('the documentation checks', () => {
  it('see a missing member comment and an emitted private member', () => {
    const source = ts.createSourceFile(
      'probe.ts',
      '/** Doc. */\nexport class A {\n  /** Doc. */\n  a(): void {}\n  b(): void {}\n  private c = 1;\n}\n',
      ts.ScriptTarget.ES2022,
      true,
    );
    const cls = source.statements[0] as ts.ClassDeclaration;
    const [a, b, c] = cls.members as unknown as [ts.ClassElement, ts.ClassElement, ts.ClassElement];
    expect([documented(cls), documented(a), documented(b)]).toEqual([true, true, false]);
    expect([isPublicMember(b), isPublicMember(c)]).toEqual([true, false]);
  });
});
