// Prometheus metrics for the HTTP server (GET /metrics).
import { Counter, Histogram, Registry as PromRegistry, collectDefaultMetrics } from 'prom-client';

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
