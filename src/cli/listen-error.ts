// One clear line for a listener that cannot start (port taken, not allowed), naming the flag and variable that change the port.

/** The listeners a command opens, with the flag and variable that set each one's port. */
export interface Listeners {
  port: number;
  adminPort: number;
}

/**
 * The line to print when listening failed with a port problem, or null for any other error (printed as it is).
 * The data listener opens first; an error naming the admin port is the admin listener's.
 */
export function listenErrorLine(command: string, err: unknown, listeners: Listeners): string | null {
  const e = err as { code?: string; port?: number; address?: string };
  if (e.code !== 'EADDRINUSE' && e.code !== 'EACCES') return null;
  const admin = e.port !== undefined ? e.port === listeners.adminPort && e.port !== listeners.port : false;
  const port = e.port ?? (admin ? listeners.adminPort : listeners.port);
  const which = admin ? 'admin' : 'data';
  const fix = admin ? '--admin-port N (or SWITCHYARD_ADMIN_PORT=N)' : '--port N (or SWITCHYARD_PORT=N)';
  const problem = e.code === 'EADDRINUSE' ? 'is already in use' : 'may not be opened by this user';
  return `switchyard ${command}: port ${port} for the ${which} listener ${problem}${e.address ? ` on ${e.address}` : ''}; choose another with ${fix}, or 0 for any free port`;
}
