import { Code, ConnectError, type ConnectRouter } from '@connectrpc/connect';
import { EventEmitter, on } from 'node:events';

import { Health, HealthCheckResponse_ServingStatus } from '#gen/grpc/health/v1/health_pb.js';

/** A status that setStatus accepts. */
export type HealthStatus = 'SERVING' | 'NOT_SERVING';

/** The health service and the switch that sets what it reports. */
export interface HealthService {
  /** Registers `grpc.health.v1.Health` (Check, Watch, List) on a Connect router. */
  routes(router: ConnectRouter): void;
  /** Sets the status of `service` (a fully qualified service name, or `''` for the server). */
  setStatus(service: string, status: HealthStatus): void;
}

/**
 * Creates the gRPC health service (grpc/health/v1/health.proto). Only the overall status `''`
 * exists at first, as NOT_SERVING, so the server reports SERVING only after setStatus('', 'SERVING').
 * Check of a service never set fails with NOT_FOUND; Watch of one streams SERVICE_UNKNOWN
 * until it is set, then every change.
 */
export function createHealthService(): HealthService {
  const statuses = new Map<string, HealthCheckResponse_ServingStatus>([
    ['', HealthCheckResponse_ServingStatus.NOT_SERVING],
  ]);
  const changes = new EventEmitter();
  changes.setMaxListeners(0);

  const statusOf = (service: string): HealthCheckResponse_ServingStatus =>
    statuses.get(service) ?? HealthCheckResponse_ServingStatus.SERVICE_UNKNOWN;

  return {
    routes(router) {
      router.service(Health, {
        check(request) {
          const status = statuses.get(request.service);
          if (status === undefined) {
            throw new ConnectError(`no health status for service "${request.service}"`, Code.NotFound);
          }
          return { status };
        },
        async *watch(request, context) {
          let last = statusOf(request.service);
          yield { status: last };
          try {
            for await (const [service] of on(changes, 'change', { signal: context.signal })) {
              const status = statusOf(request.service);
              if (service !== request.service || status === last) continue;
              last = status;
              yield { status };
            }
          } catch (error) {
            // The client went away or the server is shutting down: end the stream quietly.
            if (!context.signal.aborted) throw error;
          }
        },
        list() {
          return {
            statuses: Object.fromEntries([...statuses].map(([service, status]) => [service, { status }])),
          };
        },
      });
    },
    setStatus(service, status) {
      statuses.set(service, HealthCheckResponse_ServingStatus[status]);
      changes.emit('change', service);
    },
  };
}
