// What a global admin registers as a deploy target, validated once for the API, the CLI and the server config
// file alike: a name, an engine endpoint with its credentials, the apps (patterns) that may deploy there and the
// privileged container options they may use.
import { z } from 'zod';
import { parseEndpoint, TARGET_NAME } from '../engine/endpoint.js';
import type { ConnectionSpec } from '../engine/connection.js';
import { PRIVILEGES, type Privilege } from '../metadata/records.js';

export { PRIVILEGES, type Privilege };

const APP_PATTERN = /^[a-z0-9*?][a-z0-9._\/*?-]*$/;

/** A Docker engine a global admin registered for deployments (stored in the database, or the server config). */
export interface TargetRegistration extends ConnectionSpec {
  name: string;
  /** repository patterns (`team/*`) of the apps that may deploy here */
  apps: string[];
  /** privileged options the apps covered may use here */
  allow: Privilege[];
}

const path = z.string().min(1).startsWith('/', 'a file path on the Wharf server must be absolute');

export const targetRegistrationSchema = z
  .strictObject({
    name: z.string().regex(TARGET_NAME, 'target names are lowercase letters, digits, ., - and _ (at most 64)'),
    endpoint: z.string().min(1).max(1024),
    tls: z.strictObject({ ca: path, cert: path, key: path }).optional(),
    identityFile: path.optional(),
    apps: z.array(z.string().max(256).regex(APP_PATTERN, "an app pattern is a repository name with * and ?, e.g. 'team/*'")).min(1, 'name the apps that may deploy here (--apps PATTERN)'),
    allow: z.array(z.enum(PRIVILEGES, { error: `privileges are ${PRIVILEGES.join(', ')}` })).default([]),
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
