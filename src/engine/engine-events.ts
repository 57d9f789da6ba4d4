// The EngineEvents port: a live stream of what happens to containers and Swarm services on one engine (the Docker
// events API), kept open across drops. The reconcile loop listens to it so that a container removed by hand is seen
// in seconds, not at the next scheduled pass.
import type { ConnectionSpec } from './connection.js';

export interface EngineEvent {
  type: 'container' | 'service';
  /** die, stop, destroy, oom, health_status: unhealthy, create, update, remove, … */
  action: string;
  /** the container's or the service's id */
  id: string;
  /** a container's labels (and `name`, `image`); a service's `name` */
  attributes: Record<string, string>;
  /** ms since the epoch, by the engine's clock */
  time: number;
}

/** The engine's own filter vocabulary (`docker events --filter`): values of one key are or-ed, keys and-ed. */
export interface EventFilters {
  type: ('container' | 'service')[];
  /** `key` or `key=value` */
  label?: string[];
  event?: string[];
}

export interface EventListener {
  event(e: EngineEvent): void;
  /**
   * The stream is open: the first time (`again` false) or after a drop (`again` true). Events of the gap are asked
   * for again from the last one seen, but an engine that restarted has forgotten them: a listener that must not miss
   * a change looks again at what runs.
   */
  connected(again: boolean): void;
  /** The stream dropped or could not open; it is opened again after a pause (1 s, doubling up to 30 s). */
  lost(error: Error): void;
}

export interface EventWatch {
  /** Stops the stream and any reconnection; no listener call follows. */
  close(): void;
}

export interface EngineEvents {
  /** the endpoint as registered */
  readonly endpoint: string;
  watch(filters: EventFilters, listener: EventListener): EventWatch;
}

export type EngineEventsFactory = (target: ConnectionSpec) => EngineEvents;
