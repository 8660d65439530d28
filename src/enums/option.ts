/**
 * What a Wazuh 5.0 Delta session is for, sent in its Start (the reference's `Option`; the same
 * numbers as the wire's). `'fullSession'` wire only.
 */
export enum Option {
  /** An ordinary inventory sync (the default). */
  Sync = 0,
  /**
   * Vulnerability detection, first scan: the module's packages and OS as values and contexts,
   * with the feed offset the manager reported; the manager runs a first VD scan on them.
   */
  VDFirst = 1,
  /** Vulnerability detection, later changes: as VDFirst, for a scan of what changed. */
  VDSync = 2,
}
