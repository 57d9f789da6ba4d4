// The `pipeline` section of the app file (wharf.yaml): how the image is built, which tests run inside it, and
// where a validated image is released. Validated with the rest of the app file (schema.ts).
import { z } from 'zod';
import { duration } from '../units.js';

const nonEmpty = z.string().min(1);
const scalar = z.union([z.string(), z.number(), z.boolean()]).transform(String);
const variables = z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'variable names are letters, digits and _'), scalar);
const tag = z.string().regex(/^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/, 'not a valid tag');

export const DEFAULT_TEST_TIMEOUT_MS = 10 * 60_000;

const build = z.strictObject({
  /** the build context, relative to the app file */
  context: nonEmpty.default('.'),
  /** relative to the context */
  dockerfile: nonEmpty.default('Dockerfile'),
  args: variables.optional(),
  /** the stage of a multi-stage Dockerfile to build */
  target: nonEmpty.optional(),
  /** version tags pushed in addition to the commit SHA (e.g. 1.4.2) */
  tags: z.array(tag).optional(),
});

const testStep = z.strictObject({
  name: nonEmpty.optional(),
  /** a string runs in the image's /bin/sh -c; a list runs directly */
  run: z.union([nonEmpty, z.array(z.string()).min(1, 'needs at least the program')]),
  env: variables.optional(),
  timeout: duration.optional(),
});

/** `deploy: staging` is shorthand for `deploy: { environment: staging }`. */
const deploy = z.preprocess((v) => (typeof v === 'string' ? { environment: v } : v), z.strictObject({ environment: nonEmpty }));

export const pipelineSchema = z
  .strictObject({
    build: build.prefault({}),
    test: z.array(testStep).default([]),
    /** push to this Wharf; false stops after the tests (nothing is attested or released) */
    push: z.boolean().default(true),
    /** the environment to release to (and deploy) when everything passed */
    deploy: deploy.optional(),
    /** the network of build RUN steps and test containers (e.g. host); the engine's default otherwise */
    network: nonEmpty.optional(),
  })
  .superRefine((p, ctx) => {
    if (!p.push && p.deploy !== undefined) ctx.addIssue({ code: 'custom', message: 'deploy needs push: an image that was not pushed cannot be released', path: ['deploy'] });
  });

export type PipelineSpec = z.output<typeof pipelineSchema>;
export type TestStepSpec = PipelineSpec['test'][number];
