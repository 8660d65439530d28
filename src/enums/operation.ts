/** What a module did to an item, as stored in the persistent queue (agent side). */
export enum Operation {
  Create = 0,
  Modify = 1,
  Delete = 2,
  /** No operation; used internally for "nothing in flight". Not accepted by `persistDifference`. */
  NoOp = 3,
}
