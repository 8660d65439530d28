import { describe, expect, it } from 'vitest';
import {
  decodeAgentMessage,
  decodeManagerResponse,
  decodeMessage,
  MessageEncoder,
  Status,
  verifyMessage,
} from '../../src/wire/index.js';
import {
  encodeDecoded,
  fixtureNames,
  fromFlatcJson,
  loadEncoderChecks,
  loadFixture,
  parseJsonBigInt,
} from './support.js';

// Fixtures are built by flatc (the C++ implementation) from the JSON next to
// them; see scripts/wire-fixtures.mjs. These tests do not need flatc.
const names = fixtureNames();

describe('flatc-built fixtures', () => {
  it('has the expected fixtures', () => {
    expect(names.length).toBeGreaterThanOrEqual(17);
    for (const type of ['start_ack_', 'end_ack_']) {
      for (const status of ['ok', 'partial_ok', 'error', 'offline']) {
        expect(names).toContain(`${type}${status}`);
      }
    }
    for (const name of ['req_ret', 'start', 'data_value', 'checksum_module', 'end']) {
      expect(names).toContain(name);
    }
  });

  it.each(names)('%s decodes to the values flatc was given', (name) => {
    const { bytes, expected } = loadFixture(name);
    expect(verifyMessage(bytes)).not.toBeNull();
    expect(decodeMessage(bytes)).toEqual(expected);
    const isManager = ['StartAck', 'EndAck', 'ReqRet'].includes(expected.type);
    expect(decodeManagerResponse(bytes)).toEqual(isManager ? expected : null);
    expect(decodeAgentMessage(bytes)).toEqual(isManager ? null : expected);
  });

  // Spot checks with literal values, in case the JSON mapping and the decoder share a mistake.
  it('reads literal values from the reference bytes', () => {
    expect(decodeMessage(loadFixture('end_ack_partial_ok').bytes)).toEqual({
      type: 'EndAck',
      status: Status.PartialOk,
      session: 2001n,
    });
    expect(decodeMessage(loadFixture('start_ack_offline').bytes)).toEqual({
      type: 'StartAck',
      status: Status.Offline,
      session: 1003n,
    });
    const reqRet = decodeManagerResponse(loadFixture('req_ret').bytes);
    expect(reqRet).toEqual({
      type: 'ReqRet',
      session: 77n,
      ranges: [
        { begin: 0n, end: 0n },
        { begin: 1n, end: 5n },
        { begin: 9007199254740993n, end: 9007199254741000n },
        { begin: 18446744073709551600n, end: 18446744073709551615n },
      ],
    });
    const start = decodeAgentMessage(loadFixture('start').bytes);
    expect(start).toMatchObject({ type: 'Start', hostname: 'höst-ñame', first: true });
    expect(start?.type === 'Start' && start.groups).toEqual(['default', 'grüppe-日本']);
    const dv = decodeAgentMessage(loadFixture('data_value').bytes);
    expect(dv).toMatchObject({ seq: 18446744073709551614n, session: 9007199254740993n });
    expect(dv?.type === 'DataValue' && new TextDecoder().decode(dv.data)).toContain('"ü":"ÿ"');
  });
});

describe('our encoder, as read by flatc', () => {
  const checks = loadEncoderChecks();
  const encoder = new MessageEncoder();

  it('has a flatc reading for every fixture', () => {
    expect(checks.map((c) => c.name).sort()).toEqual(names);
  });

  it.each(checks)('$name: flatc read our bytes as the intended values', (check) => {
    const { bytes: reference, expected } = loadFixture(check.name);
    const ours = encodeDecoded(encoder, expected);
    // The recorded flatc reading applies to what the encoder produces today.
    expect(Buffer.from(ours).toString('base64')).toBe(check.ours);
    expect(check.sameJsonAsFlatcBinary).toBe(true);
    const flatcRead = fromFlatcJson(parseJsonBigInt(check.flatcJson) as Record<string, unknown>);
    expect(decodeMessage(ours)).toEqual(flatcRead);
    expect(flatcRead).toEqual(expected);
    // Field order follows flatc's, so the bytes match the reference builder's too.
    expect(check.sameBytesAsFlatcBinary).toBe(true);
    expect(Buffer.from(ours).equals(reference)).toBe(true);
  });
});
