import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ByteBuffer } from 'flatbuffers';
import { describe, expect, it } from 'vitest';
import {
  FullSession,
  Message,
  type Start,
} from '../../src/wire-5/generated/fullSession_generated.js';
import {
  decodeFullSession,
  FullSessionEncoder,
  MessageType,
  Mode,
  Operation,
  Option,
  SessionPayload,
  verifyMessage,
} from '../../src/wire-5/index.js';
import { TABLES, UNION } from '../../src/wire-5/verify.js';
import {
  crossCheckCorpus,
  FIXTURE_DIR,
  fixtureNames,
  fromFlatcJson,
  loadCrossCheck,
  loadEncoderChecks,
  loadFixture,
  MAX_U64,
  parseJsonBigInt,
  toEncoderInput,
} from './support.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');

// ---------------------------------------------------------------------------
// The schema, pinned. These literals are wazuh/wazuh f838614611
// src/shared_modules/utils/flatbuffers/schemas/inventorySync.fbs as read by
// hand; the tests check schemas/fullSession.fbs, the generated code and the
// verifier against them, so a change anywhere shows up here.

const ENUMS: Record<string, [string, number][]> = {
  Mode: [
    ['ModuleDelta', 0],
    ['ModuleCheck', 1],
    ['MetadataDelta', 2],
    ['MetadataCheck', 3],
    ['GroupDelta', 4],
    ['GroupCheck', 5],
  ],
  Operation: [
    ['Upsert', 0],
    ['Delete', 1],
  ],
  Option: [
    ['Sync', 0],
    ['VDFirst', 1],
    ['VDSync', 2],
  ],
};

const UNIONS: Record<string, [string, number][]> = {
  SessionPayload: [
    ['NONE', 0],
    ['SyncData', 1],
    ['Cleans', 2],
    ['ChecksumModule', 3],
  ],
  MessageType: [
    ['NONE', 0],
    ['DataValue', 1],
    ['DataClean', 2],
    ['ChecksumModule', 3],
    ['Start', 4],
    ['DataContext', 5],
    ['FullSession', 6],
  ],
};

/** [field, schema type, vtable slot]; a union field is its `_type` slot and its value slot. */
const TABLE_FIELDS: Record<string, [string, string, number][]> = {
  DataValue: [
    ['operation', 'Operation', 4],
    ['id', 'string', 6],
    ['index', 'string', 8],
    ['version', 'ulong', 10],
    ['data', '[byte]', 12],
  ],
  DataContext: [
    ['id', 'string', 4],
    ['index', 'string', 6],
    ['data', '[byte]', 8],
  ],
  Start: [
    ['module', 'string', 4],
    ['mode', 'Mode', 6],
    ['index', '[string]', 8],
    ['option', 'Option', 10],
    ['architecture', 'string', 12],
    ['hostname', 'string', 14],
    ['osname', 'string', 16],
    ['osplatform', 'string', 18],
    ['ostype', 'string', 20],
    ['osversion', 'string', 22],
    ['agentversion', 'string', 24],
    ['agentname', 'string', 26],
    ['agentid', 'string', 28],
    ['groups', '[string]', 30],
    ['global_version', 'ulong', 32],
    ['cluster_name', 'string', 34],
    ['feed_offset', 'ulong', 36],
  ],
  DataClean: [['index', 'string', 4]],
  ChecksumModule: [
    ['index', 'string', 4],
    ['checksum', 'string', 6],
  ],
  SyncData: [
    ['values', '[DataValue]', 4],
    ['contexts', '[DataContext]', 6],
  ],
  Cleans: [['items', '[DataClean]', 4]],
  FullSession: [
    ['start', 'Start', 4],
    ['payload_type', 'SessionPayload', 6],
    ['payload', 'SessionPayload', 8],
  ],
  Message: [
    ['content_type', 'MessageType', 4],
    ['content', 'MessageType', 6],
  ],
};

interface ParsedSchema {
  namespace: string;
  rootType: string;
  enums: Record<string, { type: string; members: [string, number][] }>;
  unions: Record<string, [string, number][]>;
  tables: Record<string, [string, string, number][]>;
}

/** A small parser for the subset of the FlatBuffers IDL the schema uses. */
function parseSchema(source: string): ParsedSchema {
  const text = source.replace(/\/\/.*$/gm, '');
  const schema: ParsedSchema = {
    namespace: /namespace\s+([\w.]+)\s*;/.exec(text)?.[1] ?? '',
    rootType: /root_type\s+(\w+)\s*;/.exec(text)?.[1] ?? '',
    enums: {},
    unions: {},
    tables: {},
  };
  const numbered = (body: string, first: number): [string, number][] => {
    let next = first;
    return body
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '')
      .map((member) => {
        const [name, value] = member.split('=').map((s) => s.trim());
        next = value === undefined ? next : Number(value);
        return [name as string, next++];
      });
  };
  for (const m of text.matchAll(/enum\s+(\w+)\s*:\s*(\w+)\s*\{([^}]*)\}/g)) {
    schema.enums[m[1] as string] = { type: m[2] as string, members: numbered(m[3] as string, 0) };
  }
  for (const m of text.matchAll(/union\s+(\w+)\s*\{([^}]*)\}/g)) {
    schema.unions[m[1] as string] = [['NONE', 0], ...numbered(m[2] as string, 1)];
  }
  for (const m of text.matchAll(/table\s+(\w+)\s*\{([^}]*)\}/g)) {
    const fields: [string, string, number][] = [];
    let id = 0;
    for (const decl of (m[2] as string).split(';')) {
      const f = /^\s*(\w+)\s*:\s*([\w[\]]+)\s*$/.exec(decl);
      if (f === null) continue;
      const [, name, type] = f as unknown as [string, string, string];
      // A union field takes two ids: its hidden `_type` field, then the value.
      if (type in schema.unions) fields.push([`${name}_type`, type, 4 + 2 * id++]);
      fields.push([name, type, 4 + 2 * id++]);
    }
    schema.tables[m[1] as string] = fields;
  }
  return schema;
}

const schemaText = readFileSync(join(root, 'schemas', 'fullSession.fbs'), 'utf8');
const parsed = parseSchema(schemaText);

describe('schemas/fullSession.fbs is the reference schema', () => {
  it('has its namespace and root type', () => {
    expect(parsed.namespace).toBe('Wazuh.SyncSchema');
    expect(parsed.rootType).toBe('Message');
  });

  it('has its enums, as bytes with the reference values', () => {
    expect(Object.keys(parsed.enums).sort()).toEqual(Object.keys(ENUMS).sort());
    for (const [name, members] of Object.entries(ENUMS)) {
      expect(parsed.enums[name]).toEqual({ type: 'byte', members });
    }
  });

  it('has its unions, with the reference tags', () => {
    expect(parsed.unions).toEqual(UNIONS);
  });

  it('has its tables, with the reference fields, types and vtable slots', () => {
    expect(parsed.tables).toEqual(TABLE_FIELDS);
  });

  it('is parsed from the text, not from the pinned literals', () => {
    // Guards the parser: a renumbered member or a swapped field must show.
    const broken = parseSchema(
      schemaText
        .replace('VDSync = 2', 'VDSync = 3')
        .replace('hostname: string;\n  osname: string;', 'osname: string;\n  hostname: string;'),
    );
    expect(broken.enums.Option?.members).toContainEqual(['VDSync', 3]);
    expect(broken.tables.Start).not.toEqual(TABLE_FIELDS.Start);
  });
});

describe('the generated code and the verifier agree with the schema', () => {
  it('generated enums have the pinned values', () => {
    const generated: Record<string, Record<string, string | number>> = {
      Mode,
      Operation,
      Option,
      SessionPayload,
      MessageType,
    };
    for (const [name, members] of Object.entries({ ...ENUMS, ...UNIONS })) {
      const values = Object.entries(generated[name] ?? {}).filter(([, v]) => typeof v === 'number');
      expect(values).toEqual(members);
    }
  });

  it('generated builders write each field to its pinned slot', () => {
    const dir = join(root, 'src', 'wire-5', 'generated', 'wazuh', 'sync-schema');
    const files = readdirSync(dir);
    const camel = (s: string) => s.replace(/_(\w)/g, (_, c: string) => c.toUpperCase());
    for (const [table, fields] of Object.entries(TABLE_FIELDS)) {
      const file = files.find((f) => f.replace(/-/g, '') === `${table.toLowerCase()}.ts`);
      expect(file, table).toBeDefined();
      const source = readFileSync(join(dir, file as string), 'utf8');
      for (const [field, , slot] of fields) {
        const add = `add${camel(field).replace(/^\w/, (c) => c.toUpperCase())}`;
        const m = new RegExp(
          `static ${add}\\(builder[^)]*\\) \\{\\s*builder\\.addField\\w+\\((\\d+),`,
        ).exec(source);
        expect(m, `${table}.${field}`).not.toBeNull();
        expect(4 + 2 * Number(m?.[1]), `${table}.${field}`).toBe(slot);
      }
    }
  });

  it('the verifier checks every field at its pinned slot, as the right kind', () => {
    expect(Object.keys(TABLES).sort()).toEqual(Object.keys(TABLE_FIELDS).sort());
    for (const [table, fields] of Object.entries(TABLE_FIELDS)) {
      const desc = TABLES[table] ?? [];
      const scalar = (type: string) => ['ulong', 'Mode', 'Operation', 'Option'].includes(type);
      expect(desc.map((f) => [f.name, f.slot])).toEqual(fields.map(([n, , s]) => [n, s]));
      for (const [i, [name, type]] of fields.entries()) {
        const field = desc[i];
        const tag = name.endsWith('_type') && type in UNIONS;
        if (type in UNIONS && !tag) expect(field?.kind).toBe(UNION);
        else if (tag || scalar(type)) expect(field?.size).toBe(type === 'ulong' ? 8 : 1);
        else expect(field?.size).toBe(4);
      }
    }
  });
});

// ---------------------------------------------------------------------------
// Bytes built by the reference implementations (scripts/wire-5-fixtures.mjs):
// NAME.bin by `flatc -b` from NAME.json, NAME.agent.bin by the C++ builder
// driven as the agent's buildFullSessionMessage drives it. These tests do not
// need flatc or a C++ compiler.

const names = fixtureNames();

describe('reference-built fixtures', () => {
  it('has one fixture per session kind', () => {
    expect(names).toEqual([
      'check',
      'cleans',
      'delta',
      'delta_vd_first',
      'delta_vd_sync_extremes',
      'group_check',
      'group_delta',
      'metadata_check',
      'metadata_delta',
    ]);
  });

  it.each(names)('%s: flatc and agent bytes decode to the values flatc was given', (name) => {
    const { expected, flatcBytes, agentBytes } = loadFixture(name);
    for (const bytes of [flatcBytes, agentBytes]) {
      expect(verifyMessage(bytes)).toBe(MessageType.FullSession);
      expect(decodeFullSession(bytes)).toEqual({ ok: true, session: expected });
    }
  });

  it.each(names)('%s: our encoder gives the agent bytes, byte for byte', (name) => {
    const { expected, agentBytes } = loadFixture(name);
    const ours = new FullSessionEncoder().encode(...toEncoderInput(expected));
    expect(Buffer.from(ours).toString('hex')).toBe(Buffer.from(agentBytes).toString('hex'));
  });

  it('flatc read our bytes as the intended values, and the C++ verifier accepted them', () => {
    const checks = loadEncoderChecks();
    expect(checks.map((c) => c.name).sort()).toEqual(names);
    for (const check of checks) {
      expect(check.sameBytesAsAgent).toBe(true);
      expect(check.sameJsonAsFlatcBinary).toBe(true);
      expect(check.cppVerifierAccepts).toBe(true);
      const flatcRead = fromFlatcJson(parseJsonBigInt(check.flatcJson) as Record<string, unknown>);
      expect(flatcRead).toEqual(loadFixture(check.name).expected);
    }
  });

  // Spot checks with literal values, in case the JSON mapping and the decoder share a mistake.
  it('reads literal values from the reference bytes', () => {
    const vd = decodeFullSession(loadFixture('delta_vd_sync_extremes').agentBytes);
    expect(vd.ok && vd.session.start).toMatchObject({
      module: 'syscollector_vd',
      mode: Mode.ModuleDelta,
      option: Option.VDSync,
      feedOffset: 18446744073709551615n,
      hostname: '',
      agentname: 'agënt-日本-🦊',
      groups: ['default', 'grüppe', ''],
    });
    expect(vd.ok && vd.session.payload).toMatchObject({
      type: 'SyncData',
      values: [{ operation: Operation.Delete, id: '', version: 18446744073709551615n }],
    });
    const delta = decodeFullSession(loadFixture('delta').agentBytes);
    const payload = delta.ok ? delta.session.payload : null;
    const values = payload?.type === 'SyncData' ? payload.values : [];
    expect(values.map((v) => v.version)).toEqual([0n, 7n, 9007199254740993n]);
    expect(new TextDecoder().decode(values[0]?.data)).toContain('"ü":"ÿ"');
    const check = decodeFullSession(loadFixture('check').agentBytes);
    expect(check.ok && check.session.payload).toEqual({
      type: 'ChecksumModule',
      index: 'wazuh-states-inventory-hardware',
      checksum: 'a94a8fe5ccb19ba61c4c0873d391e987982fbbd3',
    });
    const meta = decodeFullSession(loadFixture('metadata_check').agentBytes);
    expect(meta.ok && meta.session.start.globalVersion).toBe(MAX_U64);
    expect(meta.ok && meta.session.payload).toBeNull();
  });
});

/** The Start fields present in a buffer's vtable (a written default is absent, as in C++). */
function startFieldsPresent(bytes: Uint8Array): string[] {
  const bb = new ByteBuffer(bytes);
  const session: FullSession = Message.getRootAsMessage(bb).content(new FullSession());
  const start = session.start() as Start;
  return (TABLE_FIELDS.Start ?? [])
    .filter(([, , slot]) => bb.__offset(start.bb_pos, slot) !== 0)
    .map(([name]) => name);
}

describe('which Start fields the reference writes, per session kind', () => {
  const ALWAYS = TABLE_FIELDS.Start?.map(([name]) => name).filter(
    (n) => !['mode', 'option', 'global_version', 'feed_offset'].includes(n),
  );

  it.each([
    // name, the optional fields present beyond the strings and lists
    ['delta', []],
    ['cleans', []],
    ['check', ['mode']],
    ['delta_vd_first', ['option', 'feed_offset']],
    ['delta_vd_sync_extremes', ['option', 'feed_offset']],
    ['metadata_delta', ['mode', 'global_version']],
    ['metadata_check', ['mode', 'global_version']],
    // global_version 0 is set but, as the default, not written.
    ['group_delta', ['mode']],
    ['group_check', ['mode', 'global_version']],
  ])('%s: all strings and lists, plus %j', (name, extra) => {
    const { agentBytes, expected } = loadFixture(name);
    const expectedFields = (TABLE_FIELDS.Start ?? [])
      .map(([n]) => n)
      .filter((n) => ALWAYS?.includes(n) || (extra as string[]).includes(n));
    expect(startFieldsPresent(agentBytes)).toEqual(expectedFields);
    expect(
      startFieldsPresent(new FullSessionEncoder().encode(...toEncoderInput(expected))),
    ).toEqual(expectedFields);
  });
});

describe("our verifier against the C++ one (the manager's first check)", () => {
  const crossCheck = loadCrossCheck();
  const corpus = crossCheckCorpus(names.map((n) => loadFixture(n).agentBytes));
  const bit = (bits: Buffer, i: number) => ((bits[i >> 3] as number) >> (i & 7)) & 1;

  it('replays the recorded corpus with the recorded verdicts', () => {
    expect(corpus.length).toBe(crossCheck.inputs);
    const cpp = Buffer.from(crossCheck.cppAccepts, 'base64');
    const recorded = Buffer.from(crossCheck.oursAccepts, 'base64');
    let accepted = 0;
    let cppAccepted = 0;
    for (const [i, bytes] of corpus.entries()) {
      const ours = verifyMessage(bytes) === null ? 0 : 1;
      accepted += ours;
      cppAccepted += bit(cpp, i);
      // Never laxer than the manager's verifier.
      if (ours === 1) expect(bit(cpp, i), `input ${i}`).toBe(1);
      expect(ours, `input ${i}`).toBe(bit(recorded, i));
    }
    expect(accepted).toBe(crossCheck.bothAccept);
    expect(cppAccepted).toBe(crossCheck.bothAccept + crossCheck.onlyCppAccepts);
    expect(crossCheck.onlyOursAccepts).toBe(0);
    // A corpus worth the name: many inputs on each side of both verifiers.
    expect(crossCheck.bothAccept).toBeGreaterThan(1000);
    expect(crossCheck.bothReject).toBeGreaterThan(10_000);
  });

  it('is stricter only where documented in verify.ts', () => {
    const tableRules =
      'table rules C++ skips (vtable < 4 or >= 0x8000 bytes, table size, field past its table, offset 0 in a vector)';
    const documented = [
      'content NONE',
      'content: tag without value',
      'content: unknown tag',
      'payload: NONE with a value',
      'payload: tag without value',
      'payload: unknown tag',
      tableRules,
      `legacy member: ${tableRules}`,
    ];
    for (const reason of Object.keys(crossCheck.onlyCppReasons)) {
      expect(documented).toContain(reason);
    }
    // The union cases are there, so the corpus exercises them.
    expect(crossCheck.onlyCppReasons['payload: unknown tag']).toBeGreaterThan(0);
    expect(crossCheck.onlyCppReasons['payload: tag without value']).toBeGreaterThan(0);
  });

  it('keeps its fixtures directory to what the script writes', () => {
    const files = readdirSync(FIXTURE_DIR).sort();
    const expected = names
      .flatMap((n) => [`${n}.agent.bin`, `${n}.bin`, `${n}.json`])
      .concat(['cross-check.json', 'encoder-check.json'])
      .sort();
    expect(files).toEqual(expected);
  });
});
