/**
 * grpc.health.v1: "" is the whole server; each of our services is listed by its full name.
 * The port is bound before the state is loaded, so a server starts NOT_SERVING and turns SERVING
 * once loaded; shutdown flips everything to NOT_SERVING first so load balancers drain us.
 */
import { EventEmitter, on } from "node:events";
import { type Health, HealthCheckResponse_ServingStatus as ServingStatus } from "../gen/grpc/health/v1/health_pb.js";
import type { ServiceHandlers } from "./adapter.js";

/** The serving status of each named service. */
export class HealthState {
  private readonly statuses = new Map<string, ServingStatus>();
  private readonly changes = new EventEmitter();
  private stopped = false;

  constructor(services: readonly string[], initial: ServingStatus = ServingStatus.SERVING) {
    for (const name of ["", ...services]) this.statuses.set(name, initial);
    this.changes.setMaxListeners(0);
  }

  /** The status of `service`, SERVICE_UNKNOWN for a name we do not serve. */
  get(service: string): ServingStatus {
    return this.statuses.get(service) ?? ServingStatus.SERVICE_UNKNOWN;
  }

  /** Whether the server as a whole is serving. */
  isServing(): boolean {
    return this.get("") === ServingStatus.SERVING;
  }

  /** Marks every service SERVING (state loaded), unless shutdown has already begun. */
  startServing(): void {
    if (this.stopped) return;
    for (const name of this.statuses.keys()) this.statuses.set(name, ServingStatus.SERVING);
    this.changes.emit("change");
  }

  /** Marks every service NOT_SERVING (shutdown); for good. */
  stopServing(): void {
    this.stopped = true;
    for (const name of this.statuses.keys()) this.statuses.set(name, ServingStatus.NOT_SERVING);
    this.changes.emit("change");
  }

  /** Handlers for the Health service. */
  handlers(): ServiceHandlers<typeof Health> {
    return {
      check: (req) => {
        const status = this.get(req.service);
        if (status === ServingStatus.SERVICE_UNKNOWN) throw { code: 5, details: `unknown service ${JSON.stringify(req.service)}` };
        return { status };
      },
      watch: async (req, send, ctx) => {
        let last = this.get(req.service);
        await send({ status: last });
        for await (const _ of on(this.changes, "change", { signal: ctx.signal })) {
          const status = this.get(req.service);
          if (status !== last) await send({ status });
          last = status;
        }
      },
    };
  }
}
