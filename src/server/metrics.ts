// Prometheus metrics for the HTTP server (GET /metrics).
import { statfsSync } from 'node:fs';
import { Counter, Gauge, Histogram, Registry as PromRegistry, collectDefaultMetrics } from 'prom-client';

/** What the deploy service counts, read when /metrics is scraped. */
export interface DeploymentCounts {
  readonly outcomes: ReadonlyMap<string, number>;
  readonly drifted: ReadonlySet<string>;
  /** registered target → whether the reconcile loop's event stream from its engine is open */
  readonly eventStreams: ReadonlyMap<string, boolean>;
  needingOperator(): Promise<number>;
}

export class Metrics {
  readonly registry = new PromRegistry();
  private readonly requests: Counter<'method' | 'status'>;
  private readonly duration: Histogram<'method'>;

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'wharf_' });
    this.requests = new Counter({ name: 'wharf_http_requests_total', help: 'HTTP requests', labelNames: ['method', 'status'], registers: [this.registry] });
    this.duration = new Histogram({
      name: 'wharf_http_request_duration_seconds',
      help: 'HTTP request duration',
      labelNames: ['method'],
      buckets: [0.001, 0.005, 0.02, 0.1, 0.5, 2, 10, 60],
      registers: [this.registry],
    });
  }

  private watched = false;
  private watchingDeployments = false;

  /** Deployment outcomes, drift and environments needing an operator, from the deploy service at each scrape. */
  watchDeployments(source: DeploymentCounts): void {
    if (this.watchingDeployments) return;
    this.watchingDeployments = true;
    new Counter({
      name: 'wharf_deployments_finished_total',
      help: 'Deployments finished since the server started, by status',
      labelNames: ['status'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [status, n] of source.outcomes) this.inc({ status }, n);
      },
    });
    new Gauge({
      name: 'wharf_environments_drifted',
      help: 'Environments the reconcile loop last found running something else than their current release',
      registers: [this.registry],
      collect() {
        this.set(source.drifted.size);
      },
    });
    new Gauge({
      name: 'wharf_engine_event_streams',
      help: 'Deploy targets whose engine events the reconcile loop listens to, by whether the stream is open now',
      labelNames: ['state'],
      registers: [this.registry],
      collect() {
        const open = [...source.eventStreams.values()].filter(Boolean).length;
        this.set({ state: 'open' }, open);
        this.set({ state: 'down' }, source.eventStreams.size - open);
      },
    });
    new Gauge({
      name: 'wharf_environments_needing_operator',
      help: 'Environments whose newest deployment was paused or needs an operator (what runs matches no release)',
      registers: [this.registry],
      async collect() {
        this.set(await source.needingOperator());
      },
    });
  }

  /**
   * Adds the data directory's free and total space (read at every scrape) and the blobs quarantined since start,
   * by who found them: the serving path or the scrub.
   */
  watch(dataDir: string, quarantined: { readonly serve: number; readonly scrub: number }): void {
    if (this.watched) return;
    this.watched = true;
    new Gauge({
      name: 'wharf_storage_free_bytes',
      help: 'Free space of the data directory (for unprivileged writers)',
      registers: [this.registry],
      collect() {
        const s = statfsSync(dataDir);
        this.set(s.bavail * s.bsize);
      },
    });
    new Gauge({
      name: 'wharf_storage_size_bytes',
      help: 'Size of the filesystem of the data directory',
      registers: [this.registry],
      collect() {
        const s = statfsSync(dataDir);
        this.set(s.blocks * s.bsize);
      },
    });
    const reported = { serve: 0, scrub: 0 };
    new Counter({
      name: 'wharf_blob_integrity_failures_total',
      help: 'Stored blobs found not to match their digest or recorded size, and quarantined',
      labelNames: ['found_by'],
      registers: [this.registry],
      collect() {
        for (const by of ['serve', 'scrub'] as const) {
          this.inc({ found_by: by }, quarantined[by] - reported[by]);
          reported[by] = quarantined[by];
        }
      },
    });
  }

  private watchingDatabase = false;

  /**
   * The statements the metadata store sent to its database, by backend and statement (a hot query's name, else the
   * statement's first keyword): on PostgreSQL each is a round trip. Read from the store's own counts at each scrape.
   */
  watchDatabase(roundTrips: { readonly backend: string; byStatement(): ReadonlyMap<string, number> } | undefined): void {
    if (this.watchingDatabase || roundTrips === undefined) return;
    this.watchingDatabase = true;
    new Counter({
      name: 'wharf_db_queries_total',
      help: 'Statements sent to the metadata database (on PostgreSQL each is a round trip; BEGIN and COMMIT included), by statement',
      labelNames: ['backend', 'statement'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [statement, n] of roundTrips.byStatement()) this.inc({ backend: roundTrips.backend, statement }, n);
      },
    });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  observe(method: string, status: number, seconds: number): void {
    this.requests.inc({ method, status: String(status) });
    this.duration.observe({ method }, seconds);
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }
}
