// Secret values for containers: kept by Wharf per app and environment, sealed at rest (secret-box.ts), written
// through the API but never read back through it, opened only at deploy time and handed to the engine and nowhere
// else. Nothing here reads the Wharf server's own files or environment: those hold its signing key and passwords.
import { RegistryError } from '../oci/errors.js';
import { isValidRepositoryName } from '../oci/reference.js';
import type { DeployTargetMetadata, StoredSecret } from '../metadata/metadata.js';
import { SECRET_NAME } from '../app-file/schema.js';
import type { EnvironmentPlan } from '../app-file/plan.js';
import type { SecretBox } from './secret-box.js';

/** Resolved values by variable name. Never log, persist or return these. */
export type SecretValues = Record<string, string>;

export type SecretResolver = (plan: EnvironmentPlan) => Promise<SecretValues>;

const ENV_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;
/** Engines take environment variables of any size, but a secret is a password or a key, not a file system. */
export const MAX_SECRET_BYTES = 64 * 1024;

export class ManagedSecrets {
  constructor(
    private readonly store: DeployTargetMetadata,
    private readonly box: SecretBox,
  ) {}

  async set(app: string, environment: string, name: string, value: string, actor: string | null): Promise<void> {
    checkSlot(app, environment, name);
    if (Buffer.byteLength(value, 'utf8') > MAX_SECRET_BYTES) throw bad(`a secret value is at most ${MAX_SECRET_BYTES / 1024} KiB`);
    await this.store.putSecret({ app, environment, name, sealed: this.box.seal({ app, environment, name }, value) }, actor);
  }

  /** Names and when they were set; never values. */
  list(app: string, environment?: string): Promise<StoredSecret[]> {
    if (!isValidRepositoryName(app)) throw bad(`invalid app name ${JSON.stringify(app)}`);
    if (environment !== undefined && !ENV_NAME.test(environment)) throw bad(`invalid environment name ${JSON.stringify(environment)}`);
    return this.store.secrets(app, environment);
  }

  async remove(app: string, environment: string, name: string): Promise<void> {
    checkSlot(app, environment, name);
    if (!(await this.store.removeSecret(app, environment, name))) throw new RegistryError('NOT_FOUND', `${app}/${environment} has no secret ${name}`);
  }

  /** The values an environment's container gets, from the secrets of that app and environment only. */
  resolver(): SecretResolver {
    return async (plan) => {
      const values: SecretValues = {};
      for (const [variable, source] of Object.entries(plan.container.secrets)) {
        const slot = { app: plan.app, environment: plan.environment, name: source.secret };
        const sealed = await this.store.sealedSecret(slot.app, slot.environment, slot.name);
        if (sealed === undefined) {
          throw new Error(`secret ${variable}: ${plan.app}/${plan.environment} has no secret ${source.secret} (set it with 'wharf secret set ${plan.app} ${plan.environment} ${source.secret}')`);
        }
        try {
          values[variable] = this.box.open(slot, sealed);
        } catch {
          throw new Error(`secret ${variable}: ${source.secret} cannot be opened with this server's secret key (was WHARF_SECRET_KEY or secret.key changed?)`);
        }
      }
      return values;
    };
  }
}

function checkSlot(app: string, environment: string, name: string): void {
  if (!isValidRepositoryName(app)) throw bad(`invalid app name ${JSON.stringify(app)}`);
  if (!ENV_NAME.test(environment)) throw bad(`invalid environment name ${JSON.stringify(environment)}`);
  if (!SECRET_NAME.test(name)) throw bad(`invalid secret name ${JSON.stringify(name)} (letters, digits, ., - and _)`);
}

function bad(message: string): RegistryError {
  return new RegistryError('INVALID', message);
}

/** Blanks out secret values an app may echo into its logs or health output before they reach a record. */
export function redact(text: string, values: SecretValues): string {
  let out = text;
  for (const v of Object.values(values)) if (v.length > 0) out = out.split(v).join('[secret]');
  return out;
}
