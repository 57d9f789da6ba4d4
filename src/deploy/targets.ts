// Registered deploy targets: added and removed by a global admin (API, CLI) or listed in the server config file,
// and read at every apply and deploy, so a narrowed registration takes effect at once.
import { RegistryError } from '../oci/errors.js';
import type { DeployTargetMetadata, StoredTarget } from '../metadata/metadata.js';
import { targetRegistrationSchema, type TargetRegistration } from './target-registration.js';

export class DeployTargets {
  constructor(private readonly store: DeployTargetMetadata) {}

  list(): Promise<StoredTarget[]> {
    return this.store.targets();
  }

  async lookup(): Promise<(name: string) => StoredTarget | undefined> {
    const all = new Map((await this.store.targets()).map((t) => [t.name, t]));
    return (name) => all.get(name);
  }

  /** Registers (or re-registers) a target; the input is validated here, whatever called. */
  async add(input: unknown, actor: string | null): Promise<TargetRegistration> {
    const parsed = targetRegistrationSchema.safeParse(input);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new RegistryError('INVALID', `${issue.path.join('.') || 'target'}: ${issue.message}`);
    }
    const existing = (await this.store.targets()).find((t) => t.name === parsed.data.name);
    if (existing?.source === 'config') throw new RegistryError('CONFLICT', `target ${parsed.data.name} comes from the server config file: change it there`);
    await this.store.putTarget(parsed.data, 'api', actor);
    return parsed.data;
  }

  async remove(name: string): Promise<void> {
    const existing = (await this.store.targets()).find((t) => t.name === name);
    if (!existing) throw new RegistryError('NOT_FOUND', `no deploy target named ${JSON.stringify(name)}`);
    if (existing.source === 'config') throw new RegistryError('CONFLICT', `target ${name} comes from the server config file: remove it there`);
    await this.store.removeTarget(name);
  }

  /** At server start: the config file's targets, as it lists them now (validated by the config schema). */
  async syncConfig(targets: TargetRegistration[]): Promise<void> {
    for (const t of targets) await this.store.putTarget(t, 'config', null);
    await this.store.removeConfigTargetsExcept(targets.map((t) => t.name));
  }
}
