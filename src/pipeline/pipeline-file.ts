// Reads the pipeline of an app file: validated with the whole file (located errors), paths resolved against
// the file's directory, and the targets the file gives the deploy environment.
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { AppFileError, parseAppFile } from '../app-file/parse.js';
import { resolveEnvironment, targetNames } from '../app-file/plan.js';
import type { PipelineSpec } from '../app-file/pipeline-schema.js';

export interface LoadedPipeline {
  /** the app file, as the user named it (for messages) */
  file: string;
  app: string;
  spec: PipelineSpec;
  /** absolute path of the build context */
  contextDir: string;
  /** where this file deploys the deploy environment (host endpoints, or the Swarm service) */
  deployTargets: string[];
}

export async function loadPipeline(file: string): Promise<LoadedPipeline> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new Error(`cannot read ${file}: ${(e as Error).message}`);
  }
  const app = parseAppFile(text);
  const spec = app.pipeline;
  if (!spec) throw new AppFileError([{ path: 'pipeline', message: `${file} has no pipeline section` }]);
  const env = spec.deploy?.environment;
  if (env !== undefined && !(env in app.environments)) {
    throw new AppFileError([{ path: 'pipeline.deploy.environment', message: `no environment named '${env}' in ${file}` }]);
  }
  const contextDir = resolve(dirname(file), spec.build.context);
  const dockerfile = resolve(contextDir, spec.build.dockerfile);
  const inside = relative(contextDir, dockerfile);
  if (inside.startsWith('..') || isAbsolute(inside)) {
    throw new AppFileError([{ path: 'pipeline.build.dockerfile', message: `the Dockerfile must be inside the build context (${contextDir})` }]);
  }
  return {
    file,
    app: app.app,
    spec: { ...spec, build: { ...spec.build, dockerfile: inside.split('\\').join('/') } },
    contextDir,
    deployTargets: env === undefined ? [] : targetNames(resolveEnvironment(app, env)),
  };
}
