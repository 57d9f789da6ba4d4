// What a global admin registers as a deploy target, validated once for the API, the CLI and the server config
// file alike: a name, an engine endpoint with its credentials, the apps (patterns) that may deploy there and the
// privileged container options they may use.
import { z } from 'zod';
import { parseEndpoint, TARGET_NAME } from '../engine/endpoint.js';
import type { ConnectionSpec } from '../engine/connection.js';
import { isIP } from 'node:net';
import { PRIVILEGES, type Privilege, type ProxyRegistration } from '../metadata/records.js';

export { PRIVILEGES, type Privilege, type ProxyRegistration };

const APP_PATTERN = /^[a-z0-9*?][a-z0-9._\/*?-]*$/;

/** A Docker engine a global admin registered for deployments (stored in the database, or the server config). */
export interface TargetRegistration extends ConnectionSpec {
  name: string;
  /** repository patterns (`team/*`) of the apps that may deploy here */
  apps: string[];
  /** privileged options the apps covered may use here */
  allow: Privilege[];
  /** the reverse proxy apps may ask for here (app file `proxy`); without it a proxy is refused */
  proxy?: ProxyRegistration;
}

/** An image reference as `docker run` takes it: [registry[:port]/]path[:tag][@sha256:…], nothing else. */
const IMAGE_REF = /^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]{1,5})?(\/[a-z0-9]+([._-]{1,2}[a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[0-9a-f]{64})?$/;

const portRange = z
  .string()
  .regex(/^\d{1,5}-\d{1,5}$/, "a port range such as '8000-8999'")
  .transform((r) => {
    const [from, to] = r.split('-').map(Number) as [number, number];
    return { from, to };
  })
  .or(z.strictObject({ from: z.number().int(), to: z.number().int() }))
  .refine((r) => r.from >= 1 && r.from <= r.to && r.to <= 65535, 'ports are 1-65535, the first not above the last');

/**
 * The proxy a global admin allows on a target: which nginx image Wharf runs (never the app file's choice), the
 * address it listens on and the public ports app files may claim there.
 */
export const proxyRegistrationSchema = z.strictObject({
  image: z.string().max(512).regex(IMAGE_REF, 'an image reference such as nginx:stable'),
  address: z.string().refine((a) => isIP(a) !== 0, 'an IP address such as 0.0.0.0 or 127.0.0.1').default('0.0.0.0'),
  ports: portRange.default({ from: 1024, to: 65535 }),
});

const path = z.string().min(1).startsWith('/', 'a file path on the Wharf server must be absolute');

export const targetRegistrationSchema = z
  .strictObject({
    name: z.string().regex(TARGET_NAME, 'target names are lowercase letters, digits, ., - and _ (at most 64)'),
    endpoint: z.string().min(1).max(1024),
    tls: z.strictObject({ ca: path, cert: path, key: path }).optional(),
    identityFile: path.optional(),
    apps: z.array(z.string().max(256).regex(APP_PATTERN, "an app pattern is a repository name with * and ?, e.g. 'team/*'")).min(1, 'name the apps that may deploy here (--apps PATTERN)'),
    allow: z.array(z.enum(PRIVILEGES, { error: `privileges are ${PRIVILEGES.join(', ')}` })).default([]),
    proxy: proxyRegistrationSchema.optional(),
  })
  .superRefine((t, ctx) => {
    let scheme: string;
    try {
      scheme = parseEndpoint(t.endpoint).scheme;
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message, path: ['endpoint'] });
      return;
    }
    if (t.tls !== undefined && scheme !== 'tcp') ctx.addIssue({ code: 'custom', message: 'tls applies only to tcp:// endpoints', path: ['tls'] });
    if (t.identityFile !== undefined && scheme !== 'ssh') ctx.addIssue({ code: 'custom', message: 'identityFile applies only to ssh:// endpoints', path: ['identityFile'] });
  });
