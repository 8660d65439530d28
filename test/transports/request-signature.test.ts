// The Wazuh 5.0 request signature: AES-CMAC against the published vectors, the canonical head
// byte for byte, a signature computed by the openssl CLI, and the manager-side verification.
import { describe, expect, it } from 'vitest';
import {
  AesCmac,
  aesCmac,
  canonicalRequestHead,
  parseAgentKey,
  signRequest,
  verifyRequestSignature,
} from '../../src/transports/request-signature.js';

const hex = (s: string) => Buffer.from(s, 'hex');
// RFC 4493 / NIST SP 800-38B example messages: the first 0, 16, 40 and 64 bytes of this.
const M = hex(
  '6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51' +
    '30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710',
);
const VECTORS: Array<[string, string, [number, string][]]> = [
  [
    'AES-128 (RFC 4493 section 4)',
    '2b7e151628aed2a6abf7158809cf4f3c',
    [
      [0, 'bb1d6929e95937287fa37d129b756746'],
      [16, '070a16b46b4d4144f79bdd9dd04a287c'],
      [40, 'dfa66747de9ae63030ca32611497c827'],
      [64, '51f0bebf7e3b9d92fc49741779363cfe'],
    ],
  ],
  [
    'AES-192 (NIST SP 800-38B D.2)',
    '8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b',
    [
      [0, 'd17ddf46adaacde531cac483de7a9367'],
      [16, '9e99a7bf31e710900662f65e617c5184'],
      [40, '8a1de5be2eb31aad089a82e6ee908b0e'],
      [64, 'a1d5df0eed790f794d77589659f39a11'],
    ],
  ],
  [
    'AES-256 (NIST SP 800-38B D.3)',
    '603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4',
    [
      [0, '028962f61b7bf89efc6b551f4667d983'],
      [16, '28a7023f452e8f82bd4bf28d8c37c35c'],
      [40, 'aaf3d8f1de5640c232f5b169b9c911e6'],
      [64, 'e1992190549f6ed5696a2c056c315410'],
    ],
  ],
];

describe('AES-CMAC', () => {
  for (const [name, key, cases] of VECTORS) {
    it(`${name}: all four example messages`, () => {
      for (const [length, tag] of cases) {
        expect(aesCmac(key, M.subarray(0, length)).toString('hex'), `${length} bytes`).toBe(tag);
      }
    });
  }

  it('fed in any split, the tag is the one-shot tag', () => {
    const [, key, cases] = VECTORS[2] as (typeof VECTORS)[number];
    for (const [length, tag] of cases) {
      const message = M.subarray(0, length);
      for (let a = 0; a <= length; a += 3) {
        for (let b = a; b <= length; b += 5) {
          const mac = new AesCmac(hex(key))
            .update(message.subarray(0, a))
            .update(message.subarray(a, b))
            .update(message.subarray(b));
          expect(mac.digest().toString('hex')).toBe(tag);
        }
      }
    }
  });

  it('refuses a second digest and an update after it', () => {
    const mac = new AesCmac('2b7e151628aed2a6abf7158809cf4f3c');
    mac.digest();
    expect(() => mac.digest()).toThrow(/twice/);
    expect(() => mac.update('x')).toThrow(/after digest/);
  });
});

describe('parseAgentKey', () => {
  it('decodes 32, 48 and 64 hex digits, either case', () => {
    expect(parseAgentKey('2B7E151628AED2A6ABF7158809CF4F3C')).toEqual(
      hex('2b7e151628aed2a6abf7158809cf4f3c'),
    );
    expect(parseAgentKey('ab'.repeat(24))).toHaveLength(24);
    expect(parseAgentKey('ab'.repeat(32))).toHaveLength(32);
  });

  it('says what is wrong with a bad key', () => {
    expect(() => parseAgentKey('abc')).toThrow(TypeError);
    expect(() => parseAgentKey('zz'.repeat(16))).toThrow(/non-hex/);
    expect(() => parseAgentKey('ab'.repeat(20))).toThrow(/16, 24 or 32 bytes.*got 20 bytes/);
    expect(() => parseAgentKey('')).toThrow(RangeError);
    expect(() => new AesCmac(new Uint8Array(15))).toThrow(RangeError);
  });
});

describe('canonical request and signRequest', () => {
  it('the head is byte for byte the reference canonicalRequestHead', () => {
    const head = canonicalRequestHead('POST', '/stateful', '001', 1767225600);
    expect(Buffer.from(head)).toEqual(
      Buffer.from('WAZUH-REQUEST\n1\nPOST\n/stateful\n001\n1767225600\n', 'latin1'),
    );
  });

  it('an empty body signs the head alone (tag computed by `openssl mac ... CMAC`)', () => {
    const header = signRequest({
      method: 'POST',
      target: '/stateful',
      agentId: '001',
      key: '000102030405060708090a0b0c0d0e0f',
      body: new Uint8Array(0),
      timestamp: 1767225600,
    });
    expect(header).toBe('Wazuh 001:1767225600:963c1e3bbb0abb817664e4ca6f8e50fa');
  });

  it('a 70 KB body under an AES-256 key matches the openssl CLI, whole or in parts', () => {
    // openssl mac -cipher AES-256-CBC -macopt hexkey:<key> -in <head + body> CMAC
    const body = Uint8Array.from({ length: 70_001 }, (_, i) => (i * 7 + 3) % 256);
    const input = {
      method: 'POST',
      target: '/stateful',
      agentId: '001',
      key: '0123456789abcdef0123456789abcdef00112233445566778899aabbccddeeff',
      timestamp: 1767225600,
    };
    const expected = 'Wazuh 001:1767225600:78a2cb33394ca6e10ad82129dad1049b';
    expect(signRequest({ ...input, body })).toBe(expected);
    expect(
      signRequest({
        ...input,
        body: [body.subarray(0, 5), body.subarray(5, 65_541), body.subarray(65_541)],
      }),
    ).toBe(expected);
  });

  it('refuses a timestamp that is not whole seconds', () => {
    const input = { method: 'POST', target: '/', agentId: '1', key: 'ab'.repeat(16), body: [] };
    expect(() => signRequest({ ...input, timestamp: 1.5 })).toThrow(TypeError);
  });
});

describe('verifyRequestSignature', () => {
  const KEY = 'ab'.repeat(32);
  const body = new TextEncoder().encode('session bytes');
  const now = 1_767_225_600;
  const signed = (over: Partial<Parameters<typeof signRequest>[0]> = {}) =>
    signRequest({
      method: 'POST',
      target: '/stateful',
      agentId: '001',
      key: KEY,
      body,
      timestamp: now,
      ...over,
    });
  const verify = (header: string | undefined, over: object = {}) =>
    verifyRequestSignature(header, {
      method: 'post',
      target: '/stateful',
      body,
      keyFor: (id) => (Number(id) === 1 ? KEY : undefined),
      now,
      ...over,
    });

  it('accepts its own signature and names the agent as client.keys does', () => {
    expect(verify(signed())).toEqual({
      ok: true,
      signedAgentId: '001',
      agentId: '001',
      timestamp: now,
    });
    expect(verify(signed({ agentId: '1' }))).toMatchObject({
      ok: true,
      signedAgentId: '1',
      agentId: '001',
    });
    expect(verify(signed(), { body: [body.subarray(0, 4), body.subarray(4)] })).toMatchObject({
      ok: true,
    });
  });

  it('refuses in the manager order, each with its reason', () => {
    const cases: Array<[string | undefined, object, string]> = [
      [signed(), { protocolVersion: '2' }, 'unsupported-version'],
      [undefined, {}, 'missing'],
      ['Bearer x', {}, 'malformed'],
      [signed().toUpperCase().replace('WAZUH', 'Wazuh'), {}, 'malformed'],
      [`${signed()} `, {}, 'malformed'],
      [signed({ timestamp: now - 301 }), {}, 'expired'],
      [signed({ timestamp: now + 31 }), {}, 'future'],
      [signed({ agentId: '002' }), {}, 'unknown-agent'],
      [signed(), { keyFor: () => 'abc' }, 'bad-key'],
      [signed(), { body: new TextEncoder().encode('session bytez') }, 'invalid-mac'],
      [signed(), { target: '/stateless' }, 'invalid-mac'],
      [signed({ key: 'cd'.repeat(32) }), {}, 'invalid-mac'],
    ];
    for (const [header, over, reason] of cases) {
      expect(verify(header, over), reason).toMatchObject({ ok: false, reason });
    }
    expect(verify(signed({ timestamp: now - 300 }))).toMatchObject({ ok: true });
    expect(verify(signed({ timestamp: now + 30 }))).toMatchObject({ ok: true });
    expect(verify(signed({ timestamp: now - 10 }), { maxSkewSeconds: 5 })).toMatchObject({
      reason: 'expired',
    });
  });

  it('signs the timestamp as written in the header (leading zeros included)', () => {
    const mac = aesCmac(KEY, canonicalRequestHead('POST', '/stateful', '001', `0${now}`), body);
    expect(verify(`Wazuh 001:0${now}:${mac.toString('hex')}`)).toMatchObject({ ok: true });
  });
});
