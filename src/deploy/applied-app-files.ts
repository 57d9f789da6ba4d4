// The app file applied for each application, as deployments and releases read it: parsed, and refused (CONFLICT)
// when today's rules refuse the stored text. Built before Delivery, which asks it whether an environment deploys.
import { RegistryError } from '../oci/errors.js';
import type { AppFileMetadata } from '../metadata/metadata.js';
import { AppFileError, parseAppFile } from '../app-file/parse.js';
import { resolveEnvironment, targetNames } from '../app-file/plan.js';
import type { AppFile } from '../app-file/schema.js';

export class AppliedAppFiles {
  constructor(private readonly store: AppFileMetadata) {}

  async get(app: string): Promise<{ text: string; file: AppFile } | null> {
    const text = await this.store.get(app);
    if (text === null) return null;
    try {
      return { text, file: parseAppFile(text) };
    } catch (e) {
      // A file stored before today's rules (or written around apply) deploys nothing until applied again.
      if (e instanceof AppFileError) throw new RegistryError('CONFLICT', `the stored app file of ${app} is refused: ${e.message}; apply a corrected file`);
      throw e;
    }
  }

  /** Whether the environment deploys somewhere (Docker hosts or a Swarm service) per the applied app file. */
  async hasTargets(app: string, environment: string): Promise<boolean> {
    const f = await this.get(app);
    if (!f?.file.environments[environment]) return false;
    return targetNames(resolveEnvironment(f.file, environment)).length > 0;
  }
}
