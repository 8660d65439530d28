#!/usr/bin/env node
// Regenerates test/fixtures/wire-5/ with the reference (C++) FlatBuffers
// implementation, so the tests can check byte compatibility without it:
//
// 1. For each session below, writes NAME.json (flatc's JSON form) and has
//    `flatc -b` build NAME.bin from it (flatc's own field order), and has
//    scripts/wire-5-reference.cpp build NAME.agent.bin: the C++ builder
//    driven exactly as the Wazuh agent's buildFullSessionMessage drives it.
// 2. Encodes the same session with our FullSessionEncoder and records in
//    encoder-check.json whether our bytes equal the agent's, whether
//    `flatc --json --raw-binary` reads them as it reads its own NAME.bin,
//    and whether the C++ verifier (the manager's first check) accepts all
//    three.
// 3. Cross-checks our verifier with the C++ one on mutated fixtures and on
//    union tags set to every value, and writes cross-check.json: counts by
//    verdict, why the C++ verifier accepted what ours refused, and a sample
//    of the inputs with both verdicts for the tests to replay. Ours must
//    never accept what the C++ one refuses; the script fails if it does.
//
// Usage: node scripts/wire-5-fixtures.mjs   (needs flatc, g++ and the
// FlatBuffers C++ headers of the same version as flatc; Debian:
// apt-get install flatbuffers-compiler libflatbuffers-dev g++). Commit the output.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ByteBuffer } from 'flatbuffers';
import { tsImport } from 'tsx/esm/api';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const schema = join(root, 'schemas', 'fullSession.fbs');
const wire = await tsImport('../src/wire-5/index.ts', import.meta.url);
const generated = await tsImport(
  '../src/wire-5/generated/fullSession_generated.ts',
  import.meta.url,
);
const support = await tsImport('../test/wire-5/support.ts', import.meta.url);
const { FullSessionEncoder, Mode, Operation, Option, verifyMessage, decodeFullSession } = wire;
const { FIXTURE_DIR, MAX_U64, crossCheckCorpus, fixtureNames, loadFixture, session } = support;
const { stringifyJsonBigInt, toEncoderInput, toFlatcJson, toReferenceInput } = support;

const text = (s) => new TextEncoder().encode(s);
const doc = (o) => text(JSON.stringify(o));
const PACKAGES = 'wazuh-states-inventory-packages';
const PORTS = 'wazuh-states-inventory-ports';
const VULNS = 'wazuh-states-vulnerabilities';

/** name -> session, in the decoder's form (fixtures.test.ts reads them back). */
const sessions = {
  delta: session(
    { index: [PACKAGES, PORTS] },
    {
      type: 'SyncData',
      values: [
        {
          operation: Operation.Upsert,
          id: 'c0ffee',
          index: PACKAGES,
          version: 0n,
          data: doc({ package: { name: 'bash', version: '5.2' }, ü: 'ÿ' }),
        },
        {
          operation: Operation.Delete,
          id: 'dead',
          index: PORTS,
          version: 7n,
          data: new Uint8Array(0),
        },
        {
          operation: Operation.Upsert,
          id: 'beef',
          index: PACKAGES,
          version: 9007199254740993n,
          data: Uint8Array.from({ length: 256 }, (_, i) => i),
        },
      ],
      contexts: [],
    },
  ),
  delta_vd_first: session(
    {
      module: 'syscollector_vd',
      index: [PACKAGES],
      option: Option.VDFirst,
      feedOffset: 123456789n,
    },
    {
      type: 'SyncData',
      values: [
        { operation: Operation.Upsert, id: 'p1', index: PACKAGES, version: 1n, data: doc({}) },
      ],
      contexts: [
        { id: 'os', index: VULNS, data: doc({ os: { name: 'Ubuntu' } }) },
        { id: 'hotfixes', index: VULNS, data: doc([]) },
      ],
    },
  ),
  delta_vd_sync_extremes: session(
    {
      module: 'syscollector_vd',
      index: [],
      option: Option.VDSync,
      feedOffset: MAX_U64,
      hostname: '',
      agentname: 'agënt-日本-🦊',
      groups: ['default', 'grüppe', ''],
    },
    {
      type: 'SyncData',
      values: [
        {
          operation: Operation.Delete,
          id: '',
          index: '',
          version: MAX_U64,
          data: new Uint8Array(0),
        },
      ],
      contexts: [{ id: '', index: '', data: new Uint8Array(0) }],
    },
  ),
  cleans: session(
    {
      module: 'fim',
      index: ['wazuh-states-fim-files', 'wazuh-states-fim-registry-keys'],
    },
    {
      type: 'Cleans',
      indices: [
        'wazuh-states-fim-files',
        'wazuh-states-fim-registry-keys',
        'wazuh-states-fim-registry-values',
      ],
    },
  ),
  check: session(
    { mode: Mode.ModuleCheck, index: ['wazuh-states-inventory-hardware'] },
    {
      type: 'ChecksumModule',
      index: 'wazuh-states-inventory-hardware',
      checksum: 'a94a8fe5ccb19ba61c4c0873d391e987982fbbd3',
    },
  ),
  metadata_delta: session(
    {
      module: 'agent-info',
      mode: Mode.MetadataDelta,
      index: [PACKAGES, PORTS],
      globalVersion: 42n,
    },
    null,
  ),
  metadata_check: session(
    { module: 'agent-info', mode: Mode.MetadataCheck, index: [PACKAGES], globalVersion: MAX_U64 },
    null,
  ),
  group_delta: session(
    { module: 'agent-info', mode: Mode.GroupDelta, index: [], globalVersion: 0n },
    null,
  ),
  group_check: session(
    {
      module: 'agent-info',
      mode: Mode.GroupCheck,
      index: [PACKAGES],
      globalVersion: 9007199254740993n,
      groups: ['default', 'linux'],
    },
    null,
  ),
};

function run(command, args, input) {
  try {
    return execFileSync(command, args, {
      input,
      maxBuffer: 1 << 28,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  } catch (error) {
    if (error.code === 'ENOENT') {
      console.error(`needs ${command} on PATH (see the usage at the top of this script).`);
    }
    throw error;
  }
}

/** flatc's JSON rendering of a binary Message. */
function flatcJsonOf(binPath, work) {
  const out = mkdtempSync(join(work, 'json-'));
  run('flatc', ['--json', '--strict-json', '--raw-binary', '-o', out, schema, '--', binPath]);
  const name = binPath
    .split('/')
    .pop()
    .replace(/\.bin$/, '.json');
  return readFileSync(join(out, name), 'utf8');
}

/** The C++ verifier's verdict on each buffer: the content type when accepted, else null. */
function cppVerify(reference, buffers) {
  const parts = [];
  for (const b of buffers) {
    const header = Buffer.alloc(4);
    header.writeUInt32LE(b.length);
    parts.push(header, Buffer.from(b.buffer, b.byteOffset, b.byteLength));
  }
  const lines = run(reference, ['verify'], Buffer.concat(parts)).toString().trim().split('\n');
  if (lines.length !== buffers.length) throw new Error('reference verify lost inputs');
  return lines.map((line) => (line.startsWith('1 ') ? Number(line.slice(2)) : null));
}

// The rules of verify.ts that flatbuffers::Verifier does not have.
const TABLE_RULES =
  'table rules C++ skips (vtable < 4 or >= 0x8000 bytes, table size, field past its table, offset 0 in a vector)';

/** Why the C++ verifier accepted a buffer ours refuses (the buffer passed C++'s checks). */
function whyOnlyCpp(bytes) {
  const bb = new ByteBuffer(bytes);
  const message = generated.Message.getRootAsMessage(bb);
  const type = message.contentType();
  const hasContent = bb.__offset(message.bb_pos, 6) !== 0;
  if (type === 0) return 'content NONE';
  if (type > generated.MessageType.FullSession) return 'content: unknown tag';
  if (!hasContent) return 'content: tag without value';
  if (type !== generated.MessageType.FullSession) return `legacy member: ${TABLE_RULES}`;
  const fs = message.content(new generated.FullSession());
  const payloadType = fs.payloadType();
  const hasPayload = bb.__offset(fs.bb_pos, 8) !== 0;
  if (payloadType > generated.SessionPayload.ChecksumModule) return 'payload: unknown tag';
  if (payloadType === 0 && hasPayload) return 'payload: NONE with a value';
  if (payloadType !== 0 && !hasPayload) return 'payload: tag without value';
  return TABLE_RULES;
}

const work = mkdtempSync(join(tmpdir(), 'asp-wire5-fixtures-'));
try {
  // The reference builder, compiled against the C++ code flatc generates from our schema.
  run('flatc', ['--cpp', '-o', work, schema]);
  const reference = join(work, 'wire-5-reference');
  run('g++', [
    '-std=c++17',
    '-O1',
    '-I',
    work,
    '-o',
    reference,
    join(root, 'scripts', 'wire-5-reference.cpp'),
  ]);

  rmSync(FIXTURE_DIR, { recursive: true, force: true });
  mkdirSync(FIXTURE_DIR, { recursive: true });
  const encoder = new FullSessionEncoder();
  const checks = [];
  for (const [name, s] of Object.entries(sessions)) {
    const jsonPath = join(FIXTURE_DIR, `${name}.json`);
    writeFileSync(jsonPath, `${stringifyJsonBigInt(toFlatcJson(s))}\n`);
    run('flatc', ['-b', '-o', FIXTURE_DIR, schema, jsonPath]);
    const flatcBytes = readFileSync(join(FIXTURE_DIR, `${name}.bin`));
    const agentBytes = run(reference, ['build'], toReferenceInput(s));
    writeFileSync(join(FIXTURE_DIR, `${name}.agent.bin`), agentBytes);

    const ours = encoder.encode(...toEncoderInput(s)).slice();
    const decoded = decodeFullSession(ours);
    if (!decoded.ok) throw new Error(`${name}: our decoder rejects our bytes (${decoded.error})`);
    const oursPath = join(work, `${name}.bin`);
    writeFileSync(oursPath, ours);
    const flatcJson = flatcJsonOf(oursPath, work);
    const verdicts = cppVerify(reference, [ours, agentBytes, flatcBytes]);
    checks.push({
      name,
      flatcJson,
      sameJsonAsFlatcBinary: flatcJson === flatcJsonOf(join(FIXTURE_DIR, `${name}.bin`), work),
      sameBytesAsAgent: Buffer.compare(Buffer.from(ours), agentBytes) === 0,
      cppVerifierAccepts: verdicts.every((v) => v === generated.MessageType.FullSession),
    });
  }
  writeFileSync(join(FIXTURE_DIR, 'encoder-check.json'), `${JSON.stringify(checks, null, 2)}\n`);

  // Cross-check on a corpus that the tests can rebuild from the fixtures;
  // only the verdicts are committed, as bitsets in corpus order.
  const corpus = crossCheckCorpus(fixtureNames().map((n) => loadFixture(n).agentBytes));
  const cpp = cppVerify(reference, corpus);
  const counts = { bothAccept: 0, bothReject: 0, onlyCppAccepts: 0, onlyOursAccepts: 0 };
  const reasons = {};
  const cppBits = new Uint8Array(Math.ceil(corpus.length / 8));
  const oursBits = new Uint8Array(cppBits.length);
  for (const [i, bytes] of corpus.entries()) {
    const ours = verifyMessage(bytes);
    const theirs = cpp[i];
    if (theirs !== null) cppBits[i >> 3] |= 1 << (i & 7);
    if (ours !== null) oursBits[i >> 3] |= 1 << (i & 7);
    if (ours !== null && theirs !== null) {
      counts.bothAccept++;
      if (ours !== theirs) throw new Error(`input ${i}: content types differ`);
    } else if (ours === null && theirs === null) counts.bothReject++;
    else if (ours === null) {
      counts.onlyCppAccepts++;
      const reason = whyOnlyCpp(bytes);
      reasons[reason] = (reasons[reason] ?? 0) + 1;
    } else {
      counts.onlyOursAccepts++;
      console.error(`ours accepts what C++ refuses: ${Buffer.from(bytes).toString('base64')}`);
    }
  }
  const crossCheck = {
    inputs: corpus.length,
    ...counts,
    onlyCppReasons: reasons,
    cppAccepts: Buffer.from(cppBits).toString('base64'),
    oursAccepts: Buffer.from(oursBits).toString('base64'),
  };
  writeFileSync(join(FIXTURE_DIR, 'cross-check.json'), `${JSON.stringify(crossCheck, null, 2)}\n`);

  // Committed JSON must satisfy the repo's `biome check`; formatting does not change the values.
  execFileSync(join(root, 'node_modules', '.bin', 'biome'), ['format', '--write', FIXTURE_DIR], {
    stdio: 'ignore',
  });
  for (const c of checks) {
    console.log(
      `${c.name.padEnd(24)} agent's bytes: ${c.sameBytesAsAgent}` +
        `, flatc reads ours as its own: ${c.sameJsonAsFlatcBinary}` +
        `, C++ verifier accepts: ${c.cppVerifierAccepts}`,
    );
  }
  console.log(`cross-check: ${corpus.length} inputs`, counts, reasons);
  console.log(`wrote ${relative(root, FIXTURE_DIR)}`);
  const bad = checks.some(
    (c) => !c.sameBytesAsAgent || !c.sameJsonAsFlatcBinary || !c.cppVerifierAccepts,
  );
  if (bad || counts.onlyOursAccepts > 0) process.exitCode = 1;
} finally {
  rmSync(work, { recursive: true, force: true });
}
