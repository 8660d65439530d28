import type { ChangeOperation } from '../enums/operation.js';

/** One change to an item, as `persistDifferences` takes it. The same rules as `persistDifference`. */
export interface Change {
  /** The item's id: its document id on the manager is `<agent id>_<id>`. Not blank, no control characters. */
  id: string;
  /** Create, Modify or Delete (never NoOp). */
  operation: ChangeOperation;
  /** The index the manager stores the item in, e.g. 'wazuh-states-fim-files'. Not empty. */
  index: string;
  /**
   * The JSON document for Create and Modify: an object with at least one member, written without
   * leading whitespace (first character `{`). Any string for a Delete (not checked: the manager stores nothing for it).
   */
  data: string;
  /**
   * The item's version, a u64 (bigint, or a safe integer >= 0); 0 (the default) = unversioned.
   * On the 5.0 wire a version > 0 asks the manager for external versioning (a lower version
   * never replaces a stored document); the seed wire ignores it.
   */
  version?: bigint | number;
}
