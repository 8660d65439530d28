// The socket file of a Unix STREAM listener, shared by WazuhResponseListener and the mock
// manager server's stateful socket: a stale file is replaced, a live one or another kind of
// file is refused, and close removes only the file this process created.
import { chmod, lstat, mkdtemp, rename, rm, stat, unlink } from 'node:fs/promises';
import { createConnection, type Server, type Socket } from 'node:net';
import { dirname, join } from 'node:path';

/** A listener bound by {@link bindUnixSocket}. */
export interface BoundUnixSocket {
  /** Where it listens. */
  readonly path: string;
  /**
   * Destroy the connections, stop the server, then remove the socket file if it is still the
   * one created (a successor's is left alone).
   */
  close(): Promise<void>;
}

/** sockaddr_un holds 108 bytes with the terminating NUL: a longer path would be truncated. */
export const MAX_SOCKET_PATH_BYTES = 107;

/**
 * `path`, when it fits a Unix socket address.
 *
 * @throws RangeError when it is longer than {@link MAX_SOCKET_PATH_BYTES} bytes.
 */
export function checkSocketPath(path: string): string {
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES) {
    throw new RangeError(`socket path longer than ${MAX_SOCKET_PATH_BYTES} bytes: ${path}`);
  }
  return path;
}

/**
 * Make `server` listen on the Unix socket `path` with permissions `mode`; `connections` are
 * the sockets it accepted, destroyed on close. A stale socket file there (nothing accepts on
 * it) is replaced; a live one (EADDRINUSE), or a file that is not a socket, is an error. The
 * socket is bound inside a fresh 0700 directory, restricted, then renamed into place: it never
 * exists at `path` with looser permissions, the process-wide umask is left alone, and the
 * unlink libuv does on close hits the staged name, never a file a successor put at `path`.
 */
export async function bindUnixSocket(
  server: Server,
  path: string,
  mode: number,
  connections: Set<Socket>,
): Promise<BoundUnixSocket> {
  const stale = await assertReplaceable(path);
  const staging = await mkdtemp(join(dirname(path), '.wrl-'));
  const stagedPath = join(staging, 's');
  const inPlace = Buffer.byteLength(stagedPath) > MAX_SOCKET_PATH_BYTES;
  let created: { dev: number; ino: number };
  try {
    // A staged path too long for sockaddr_un: bind in place and restrict it at once.
    if (inPlace && stale) await unlink(path);
    await listen(server, inPlace ? path : stagedPath);
    await chmod(inPlace ? path : stagedPath, mode);
    if (!inPlace) await rename(stagedPath, path);
    created = await stat(path);
  } catch (error) {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    throw error;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  const { dev, ino } = created;
  return {
    path,
    async close() {
      for (const socket of connections) socket.destroy();
      connections.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      try {
        const now = await stat(path);
        if (now.dev === dev && now.ino === ino) await unlink(path);
      } catch {
        // Already gone.
      }
    },
  };
}

function listen(server: Server, path: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** Throws unless `path` is absent or a socket nothing accepts on; true for the latter. */
async function assertReplaceable(path: string): Promise<boolean> {
  let info: Awaited<ReturnType<typeof lstat>>;
  try {
    info = await lstat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
  if (!info.isSocket()) throw new Error(`${path} exists and is not a socket; not replacing it`);
  const live = await new Promise<boolean>((resolve) => {
    const probe = createConnection(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (live) {
    const error = new Error(`another process is listening on ${path}`);
    (error as NodeJS.ErrnoException).code = 'EADDRINUSE';
    throw error;
  }
  return true;
}
