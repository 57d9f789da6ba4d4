// How a Docker Engine is named and reached: the registered target name an app file uses, and the endpoint a
// registration gives (unix:///path, tcp://host:port, ssh://user@host[:port]). Pure.

/** How a registered deploy target is named: the only way an app file refers to an engine. */
export const TARGET_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export type Endpoint =
  | { scheme: 'unix'; socketPath: string }
  | { scheme: 'tcp'; host: string; port: number }
  | { scheme: 'ssh'; host: string; port: number; user: string | undefined };

const DEFAULT_SSH_PORT = 22;

/** Throws an Error whose message is fit for a located validation error (no path prefix). */
export function parseEndpoint(value: string): Endpoint {
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/(.*)$/.exec(value);
  if (!m) throw new Error(`endpoint '${value}' is not a URL (use unix:///path, tcp://host:port or ssh://user@host)`);
  const scheme = m[1]!.toLowerCase();
  const rest = m[2]!;
  switch (scheme) {
    case 'unix':
      if (!rest.startsWith('/')) throw new Error(`unix endpoint needs an absolute socket path: '${value}'`);
      return { scheme: 'unix', socketPath: rest };
    case 'tcp': {
      const url = new URL(`http://${rest}`);
      if (url.port === '') throw new Error(`tcp endpoint needs a port (e.g. tcp://host:2376): '${value}'`);
      if (url.pathname !== '/' || url.username) throw new Error(`tcp endpoint takes only host:port: '${value}'`);
      return { scheme: 'tcp', host: unbracket(url.hostname), port: Number(url.port) };
    }
    case 'ssh': {
      const url = new URL(`ssh://${rest}`);
      if (!url.hostname) throw new Error(`ssh endpoint needs a host: '${value}'`);
      return {
        scheme: 'ssh',
        host: unbracket(url.hostname),
        port: url.port === '' ? DEFAULT_SSH_PORT : Number(url.port),
        user: url.username === '' ? undefined : decodeURIComponent(url.username),
      };
    }
    default:
      throw new Error(`unknown endpoint scheme '${m[1]}'`);
  }
}

/** The address a health check run by Wharf reaches the host at (a local socket means this machine). */
export function endpointAddress(e: Endpoint): string {
  return e.scheme === 'unix' ? '127.0.0.1' : e.host;
}

function unbracket(host: string): string {
  return host.replace(/^\[|\]$/g, '');
}
