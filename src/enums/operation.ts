/** What a module did to an item, as the persistent queue stores it (agent side). */
export enum Operation {
  /** The item is new. Sent as an Upsert; a Delete before any sync removes it without a trace. */
  Create = 0,
  /** The item changed. Sent as an Upsert. */
  Modify = 1,
  /** The item is gone. Sent as a Delete; its data is not checked (any string). */
  Delete = 2,
  /** No operation: the queue's marker for "nothing in flight". Never accepted as a change. */
  NoOp = 3,
}

/** The operations a change may carry (`persistDifference*`, `Change.operation`): all but NoOp. */
export type ChangeOperation = Operation.Create | Operation.Modify | Operation.Delete;
