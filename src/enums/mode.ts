/**
 * Synchronization mode of a session; the numbers are the wire `Mode` values
 * (`ModuleFull`, `ModuleDelta`, ... in PROTOCOL.md), so they must never change.
 */
export enum Mode {
  /** Replace the module's whole inventory on the manager with the in-memory buffer (`persistDifferenceInMemory`). */
  Full = 0,
  /** Send the changes of the persistent queue (`persistDifference`); the manager applies them one by one. */
  Delta = 1,
  /** Compare an index checksum with the manager's (`requiresFullSync` / `checkIntegrity`); sends no data. */
  Check = 2,
  /** Agent metadata changed (Start carries it); no data. */
  MetadataDelta = 3,
  /** Check of the agent metadata: Start carries it with `agentInfo.checksumMetadata`; no data. */
  MetadataCheck = 4,
  /** Agent groups changed (Start carries them); no data. */
  GroupDelta = 5,
  /** Check of the agent groups: Start carries them with `agentInfo.checksumMetadata`; no data. */
  GroupCheck = 6,
}

/** The modes `synchronizeModule` takes: the two that send items. */
export type SyncModuleMode = Mode.Full | Mode.Delta;

/** The modes `synchronizeMetadataOrGroups` takes: the four that send no items. */
export type MetadataMode =
  | Mode.MetadataDelta
  | Mode.MetadataCheck
  | Mode.GroupDelta
  | Mode.GroupCheck;
