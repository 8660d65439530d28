/** Agent metadata carried by every Start message. */
export interface AgentInfo {
  /** Agent id as the manager knows it (e.g. '001'). Default: the host's machine id, else its hostname. */
  id: string;
  /** Agent name. Default: the hostname. */
  name: string;
  /** Agent version. Default: this package's version. */
  version: string;
  /** Default: `os.hostname()`. */
  hostname: string;
  /** Default: `os.machine()` (e.g. 'x86_64'). */
  architecture: string;
  /** Default: NAME from /etc/os-release, else `os.type()`. */
  osName: string;
  /** Default: `os.platform()` (e.g. 'linux'). */
  osType: string;
  /**
   * The OS platform, as Wazuh names it (e.g. 'ubuntu', 'centos', 'darwin'); the 5.0 wire's
   * `Start.osplatform` (the seed wire has no such field). Default: ID from /etc/os-release,
   * else `os.platform()`.
   */
  osPlatform: string;
  /** Default: VERSION_ID from /etc/os-release, else `os.release()`. */
  osVersion: string;
  /** Agent groups. Default: none. */
  groups: string[];
  /** Sent in Start only when set (metadata and group modes use it). */
  checksumMetadata?: string;
  /** Sent in Start only when set. */
  globalVersion?: string;
}
