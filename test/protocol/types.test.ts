// Types narrower than the runtime would let misuse compile and then fail. The @ts-expect-error
// lines fail `npm run typecheck` (tsconfig includes test/) the day a type widens again; the
// calls themselves run too, to show the runtime checks that JavaScript callers meet.
import { afterEach, describe, expect, expectTypeOf, it } from 'vitest';
import {
  AgentSyncProtocol,
  type Change,
  type ChangeOperation,
  type MetadataMode,
  Mode,
  Operation,
  type SyncModuleMode,
} from '../../src/index.js';
import { MockManager } from '../../src/testing/index.js';
import { doc } from '../helpers.js';

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const thing of open.splice(0).reverse()) await thing.close();
});

function setup() {
  const manager = new MockManager();
  const agent = new AgentSyncProtocol({
    moduleName: 'fim',
    dbPath: ':memory:',
    transport: manager.transport('fim'),
  });
  open.push(manager, agent);
  return agent;
}

describe('parameter types', () => {
  it('name exactly the modes and operations each method takes', () => {
    expectTypeOf<SyncModuleMode>().toEqualTypeOf<Mode.Full | Mode.Delta>();
    expectTypeOf<MetadataMode>().toEqualTypeOf<
      Mode.MetadataDelta | Mode.MetadataCheck | Mode.GroupDelta | Mode.GroupCheck
    >();
    expectTypeOf<ChangeOperation>().toEqualTypeOf<
      Operation.Create | Operation.Modify | Operation.Delete
    >();
    expectTypeOf<AgentSyncProtocol['synchronizeModule']>()
      .parameter(0)
      .toEqualTypeOf<SyncModuleMode>();
    expectTypeOf<AgentSyncProtocol['synchronizeMetadataOrGroups']>()
      .parameter(0)
      .toEqualTypeOf<MetadataMode>();
    expectTypeOf<AgentSyncProtocol['persistDifference']>()
      .parameter(1)
      .toEqualTypeOf<ChangeOperation>();
    expectTypeOf<AgentSyncProtocol['persistDifferenceInMemory']>()
      .parameter(1)
      .toEqualTypeOf<ChangeOperation>();
    expectTypeOf<Change['operation']>().toEqualTypeOf<ChangeOperation>();
  });

  it('refuse the wrong mode at compile time, and at run time for JavaScript callers', async () => {
    const agent = setup();
    for (const result of [
      // @ts-expect-error Check belongs to requiresFullSync
      await agent.synchronizeModule(Mode.Check),
      // @ts-expect-error a metadata mode belongs to synchronizeMetadataOrGroups
      await agent.synchronizeModule(Mode.MetadataDelta),
      // @ts-expect-error Delta belongs to synchronizeModule
      await agent.synchronizeMetadataOrGroups(Mode.Delta),
      // @ts-expect-error Full belongs to synchronizeModule
      await agent.synchronizeMetadataOrGroups(Mode.Full),
      // @ts-expect-error Check belongs to requiresFullSync
      await agent.synchronizeMetadataOrGroups(Mode.Check),
    ]) {
      expect(result).toMatchObject({ ok: false, reason: 'invalid-mode' });
    }
    expect(agent.stats.syncsFailed['invalid-mode']).toBe(5);
  });

  it('refuse NoOp at compile time, and at run time for JavaScript callers', () => {
    const agent = setup();
    // @ts-expect-error NoOp is the queue's marker, not a change
    expect(() => agent.persistDifference('a', Operation.NoOp, 'idx', doc('a'))).toThrow(RangeError);
    expect(() =>
      // @ts-expect-error as above
      agent.persistDifferenceInMemory('a', Operation.NoOp, 'idx', doc('a')),
    ).toThrow(RangeError);
    // @ts-expect-error as above
    const change: Change = { id: 'a', operation: Operation.NoOp, index: 'idx', data: doc('a') };
    expect(() => agent.persistDifferences([change])).toThrow(RangeError);
    expect(agent.pendingCount).toBe(0);
  });
});

describe('constructor options by wire', () => {
  it('type an inline transport by its wire, and require clusterName for the 5.0 one', () => {
    const manager = new MockManager({ clusterName: 'wazuh' });
    open.push(manager);
    const seen: string[] = [];
    // No annotation on the parameters: under `strict` this compiles only if TypeScript knows
    // the transport is an MQueueTransport (a union of transports left them implicitly `any`).
    const seed = new AgentSyncProtocol({
      moduleName: 'fim',
      dbPath: ':memory:',
      transport: {
        start() {},
        send(message, moduleName) {
          seen.push(`${moduleName}:${message.length}`);
        },
      },
    });
    open.push(seed);
    const fullSession = new AgentSyncProtocol({
      moduleName: 'fim',
      dbPath: ':memory:',
      wire: 'fullSession',
      clusterName: 'wazuh',
      agentInfo: { id: '001' },
      transport: {
        send: (session, signal) => manager.sessionTransport('001').send(session, signal),
      },
    });
    open.push(fullSession);
    expect(
      () =>
        // @ts-expect-error: the 'fullSession' wire needs clusterName
        new AgentSyncProtocol({
          moduleName: 'fim',
          dbPath: ':memory:',
          wire: 'fullSession',
          agentInfo: { id: '001' },
          transport: manager.sessionTransport('001'),
        }),
    ).toThrow(/clusterName is required/);
    expect(seen).toEqual([]);
  });
});
