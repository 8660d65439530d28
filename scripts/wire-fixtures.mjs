#!/usr/bin/env node
// Regenerates test/fixtures/wire/ with flatc, the reference (C++) FlatBuffers
// implementation, so the tests can check byte compatibility without flatc:
//
// 1. For each message below, writes NAME.json (flatc's JSON form) and has
//    `flatc -b` build NAME.bin from it: bytes from the C++ builder that our
//    decoder must read back to the same values.
// 2. Encodes the same values with our MessageEncoder and has
//    `flatc --json --raw-binary` print them, then records in
//    encoder-check.json our bytes, flatc's JSON for them, and whether that
//    JSON (and the bytes) equal what flatc gives for its own NAME.bin.
//
// Note that flatc 2.0.8 does not verify binaries it converts to JSON (a
// corrupt root offset crashes it), so step 2 shows that flatc reads our
// bytes as the intended values, not that they pass flatc's verifier.
//
// Usage: node scripts/wire-fixtures.mjs   (needs flatc on PATH; Debian:
// apt-get install flatbuffers-compiler). Commit the output.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tsImport } from 'tsx/esm/api';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const schema = join(root, 'schemas', 'inventorySync.fbs');
const wire = await tsImport('../src/wire/index.ts', import.meta.url);
const support = await tsImport('../test/wire/support.ts', import.meta.url);
const { MessageEncoder, Status, WireMode, WireOperation, decodeMessage } = wire;
const { FIXTURE_DIR, encodeDecoded, stringifyJsonBigInt, toFlatcJson } = support;

const MAX_U64 = 18446744073709551615n;
const statuses = [
  ['ok', Status.Ok],
  ['partial_ok', Status.PartialOk],
  ['error', Status.Error],
  ['offline', Status.Offline],
];

/** name -> message (the shape decodeMessage returns). */
const messages = {
  ...Object.fromEntries(
    statuses.map(([n, status]) => [
      `start_ack_${n}`,
      { type: 'StartAck', status, session: 1000n + BigInt(status) },
    ]),
  ),
  ...Object.fromEntries(
    statuses.map(([n, status]) => [
      `end_ack_${n}`,
      { type: 'EndAck', status, session: 2000n + BigInt(status) },
    ]),
  ),
  req_ret: {
    type: 'ReqRet',
    session: 77n,
    ranges: [
      { begin: 0n, end: 0n },
      { begin: 1n, end: 5n },
      { begin: 9007199254740993n, end: 9007199254741000n },
      { begin: 18446744073709551600n, end: MAX_U64 },
    ],
  },
  req_ret_empty: { type: 'ReqRet', session: 78n, ranges: [] },
  start: {
    type: 'Start',
    mode: WireMode.ModuleDelta,
    size: 123456789012n,
    index: ['wazuh-states-inventory-packages', 'wazuh-states-inventory-ports'],
    first: true,
    architecture: 'x86_64',
    hostname: 'höst-ñame',
    osname: 'Debian GNU/Linux',
    ostype: 'linux',
    osversion: '12',
    agentversion: 'v4.14.0',
    agentname: 'agent-001',
    agentid: '001',
    groups: ['default', 'grüppe-日本'],
    checksumMetadata: 'f1d2d2f924e986ac86fdf7b36c94bcdf32beec15',
    globalVersion: '42',
  },
  start_minimal: {
    type: 'Start',
    mode: WireMode.ModuleFull,
    size: 0n,
    index: [],
    first: false,
    groups: [],
  },
  data_value: {
    type: 'DataValue',
    seq: 18446744073709551614n,
    session: 9007199254740993n,
    operation: WireOperation.Delete,
    id: 'c0ffee',
    index: 'wazuh-states-inventory-packages',
    version: '7',
    data: new TextEncoder().encode('{"package":{"name":"bash","version":"5.2"},"ü":"\u00ff"}'),
  },
  data_value_bytes: {
    type: 'DataValue',
    seq: 1n,
    session: 2n,
    operation: WireOperation.Upsert,
    id: '',
    index: 'idx',
    data: Uint8Array.from({ length: 256 }, (_, i) => i),
  },
  data_clean: { type: 'DataClean', seq: 3n, session: 4n, index: 'wazuh-states-fim-files' },
  checksum_module: {
    type: 'ChecksumModule',
    session: MAX_U64,
    index: 'wazuh-states-inventory-hardware',
    checksum: 'a94a8fe5ccb19ba61c4c0873d391e987982fbbd3',
  },
  end: { type: 'End', session: 12345n },
};

function flatc(args) {
  try {
    return execFileSync('flatc', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    if (error.code === 'ENOENT') {
      console.error('needs flatc on PATH (Debian: apt-get install flatbuffers-compiler).');
    }
    throw error;
  }
}

/** flatc's JSON rendering of a binary Message. */
function flatcJsonOf(binPath, work) {
  const out = mkdtempSync(join(work, 'json-'));
  flatc(['--json', '--strict-json', '--raw-binary', '-o', out, schema, '--', binPath]);
  const name = binPath
    .split('/')
    .pop()
    .replace(/\.bin$/, '.json');
  return readFileSync(join(out, name), 'utf8');
}

const work = mkdtempSync(join(tmpdir(), 'asp-wire-fixtures-'));
try {
  rmSync(FIXTURE_DIR, { recursive: true, force: true });
  mkdirSync(FIXTURE_DIR, { recursive: true });
  const encoder = new MessageEncoder();
  const checks = [];
  for (const [name, message] of Object.entries(messages)) {
    const jsonPath = join(FIXTURE_DIR, `${name}.json`);
    writeFileSync(jsonPath, `${stringifyJsonBigInt(toFlatcJson(message))}\n`);
    flatc(['-b', '-o', FIXTURE_DIR, schema, jsonPath]);
    const reference = readFileSync(join(FIXTURE_DIR, `${name}.bin`));

    const ours = encodeDecoded(encoder, message).slice();
    if (decodeMessage(ours) === null) throw new Error(`${name}: our decoder rejects our bytes`);
    const oursPath = join(work, `${name}.bin`);
    writeFileSync(oursPath, ours);
    const flatcJson = flatcJsonOf(oursPath, work);
    checks.push({
      name,
      ours: Buffer.from(ours).toString('base64'),
      flatcJson,
      sameJsonAsFlatcBinary: flatcJson === flatcJsonOf(join(FIXTURE_DIR, `${name}.bin`), work),
      sameBytesAsFlatcBinary: Buffer.compare(Buffer.from(ours), reference) === 0,
    });
  }
  writeFileSync(join(FIXTURE_DIR, 'encoder-check.json'), `${JSON.stringify(checks, null, 2)}\n`);
  // Committed JSON must satisfy the repo's `biome check`; formatting does not change the values.
  execFileSync(join(root, 'node_modules', '.bin', 'biome'), ['format', '--write', FIXTURE_DIR], {
    stdio: 'ignore',
  });
  for (const c of checks) {
    console.log(
      `${c.name.padEnd(18)} flatc reads ours as its own: ${c.sameJsonAsFlatcBinary}` +
        `, identical bytes: ${c.sameBytesAsFlatcBinary}`,
    );
  }
  console.log(`wrote ${relative(root, FIXTURE_DIR)}`);
  if (checks.some((c) => !c.sameJsonAsFlatcBinary)) process.exitCode = 1;
} finally {
  rmSync(work, { recursive: true, force: true });
}
