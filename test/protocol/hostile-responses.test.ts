import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentSyncProtocol, Mode, Operation } from '../../src/index.js';
import { MessageEncoder, Status } from '../../src/wire/index.js';
import { dbFile, scriptedManager } from '../helpers.js';

const open: AgentSyncProtocol[] = [];
afterEach(async () => {
  for (const agent of open.splice(0)) await agent.close();
});

/** Valid responses of ANOTHER session, to be mutated. */
function seeds(): Uint8Array[] {
  const e = new MessageEncoder();
  const other = 0x1234_5678_9abc_def0n;
  return [
    e.startAck(Status.Ok, other).slice(),
    e.endAck(Status.Error, other).slice(),
    e.endAck(Status.Ok, other).slice(),
    e
      .reqRet(other, [
        { begin: 0n, end: 2n ** 64n - 1n },
        { begin: 5n, end: 1n },
      ])
      .slice(),
  ];
}

const mutated = fc
  .tuple(
    fc.constantFrom(...seeds()),
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
    fc.nat(),
  )
  .map(([seed, flips, cut]) => {
    const bytes = seed.slice(0, seed.length - (cut % 4));
    for (const [at, value] of flips) bytes[at % bytes.length] = value;
    return bytes;
  });

const hostile = fc.oneof(fc.uint8Array({ maxLength: 512 }), mutated);

describe('hostile responses during a running sync', () => {
  it('never throw out of parseResponseBuffer and never change the sync', async () => {
    let session = 0n;
    let tried = 0;
    let release: (() => void) | undefined;
    session = 0xfeed_0000_0000_0001n;
    const transport = scriptedManager({
      session,
      complete: (t) => {
        release = () => t.reply(t.encoder.endAck(Status.Ok, session));
      },
    });
    const agent = new AgentSyncProtocol({ moduleName: 'fim', dbPath: dbFile(), transport });
    open.push(agent);
    for (let i = 0; i < 20; i++)
      agent.persistDifference(`f${i}`, Operation.Create, 'idx', '{"v":1}');

    const running = agent.synchronizeModule(Mode.Delta, { timeoutMs: 10_000 });
    while (!release) await new Promise((resolve) => setImmediate(resolve));
    fc.assert(
      fc.property(hostile, (bytes) => {
        tried++;
        const accepted = agent.parseResponseBuffer(bytes);
        expect(typeof accepted).toBe('boolean');
      }),
      { numRuns: 5000 },
    );
    release();
    const result = await running;
    console.log(`hostile responses: ${tried} inputs fed to a running sync`);
    expect(result).toEqual({ ok: true, session, sent: 20, retransmitted: 0 });
    expect(transport.count('End')).toBe(2); // the probe's and the one after the data
  });

  it('rejects what is not a Uint8Array without throwing', () => {
    const agent = new AgentSyncProtocol({
      moduleName: 'fim',
      dbPath: ':memory:',
      transport: { start() {}, send() {} },
    });
    open.push(agent);
    for (const junk of [undefined, null, 'text', 42, {}, [1, 2, 3], new ArrayBuffer(8)]) {
      expect(agent.parseResponseBuffer(junk as unknown as Uint8Array)).toBe(false);
    }
    expect(agent.parseResponseBuffer(Buffer.from(seeds()[0] as Uint8Array))).toBe(true);
  });
});
