/** Synchronization mode; the numbers are the wire `Mode` values. */
export enum Mode {
  Full = 0,
  Delta = 1,
  Check = 2,
  MetadataDelta = 3,
  MetadataCheck = 4,
  GroupDelta = 5,
  GroupCheck = 6,
}
