import type { Operation } from '../enums/operation.js';
import type { SyncRow } from './persistent-queue.js';

interface BufferedItem {
  id: string;
  operation: Operation;
  index: string;
  data: string;
}

/**
 * In-memory buffer for a Full sync: the module's whole current state, one entry per item id.
 * Re-adding an id keeps its first position and takes the newest content.
 */
export class RecoveryBuffer {
  // A Map keeps first-insertion order even when a key is set again.
  readonly #items = new Map<string, BufferedItem>();

  add(id: string, operation: Operation, index: string, data: string): void {
    this.#items.set(id, { id, operation, index, data });
  }

  clear(): void {
    this.#items.clear();
  }

  get size(): number {
    return this.#items.size;
  }

  /** The entries in insertion order, numbered 0..size-1. */
  snapshot(): SyncRow[] {
    const rows: SyncRow[] = [];
    let seq = 0;
    for (const { id, operation, index, data } of this.#items.values()) {
      rows.push({ seq: seq++, id, index, data, operation });
    }
    return rows;
  }

  /** Sorted unique index names of the entries. */
  indices(): string[] {
    const names = new Set<string>();
    for (const item of this.#items.values()) names.add(item.index);
    return [...names].sort();
  }
}
