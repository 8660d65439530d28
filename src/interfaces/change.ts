import type { Operation } from '../enums/operation.js';

/** One change to an item, as `persistDifferences` takes it. */
export interface Change {
  id: string;
  operation: Operation;
  index: string;
  /** The JSON document (any string for a Delete). */
  data: string;
}
