// The labels Wharf puts on the containers and Swarm services it starts: how status, drift and later deploys find
// what a deployment made, and which release and plan it runs.

/** The labels every container Wharf starts carries, so status and later deploys can find it. */
export const LABELS = {
  app: 'wharf.app',
  env: 'wharf.env',
  release: 'wharf.release',
  digest: 'wharf.digest',
  deployment: 'wharf.deployment',
  replica: 'wharf.replica',
  /** the plan's fingerprint (spec-fingerprint.ts) */
  spec: 'wharf.spec',
  /** behind a proxy: the host port the replica listens on (the proxy's upstream) */
  port: 'wharf.port',
} as const;
