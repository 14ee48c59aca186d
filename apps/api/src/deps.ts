import type { CoreDeps } from "@simbatch/core";
import type { ApiCallCounter, Redis } from "@simbatch/queue";
import type { RequestHandler } from "express";
import type { ApiGates } from "./http/gates.ts";

export interface ApiConfig {
  /** Admin API is absent (404) when unset. */
  adminToken: string | undefined;
  /** Largest accepted body; larger ones get 413 before auth. Default 2 MiB. */
  maxBodyBytes: number;
}

export interface ApiDeps extends CoreDeps {
  redis: Redis;
  config: ApiConfig;
  /** Live API-call counts (Redis), read by the usage routes and moved by adjustments. */
  apiCalls: ApiCallCounter;
  /**
   * Run on authenticated routes after auth, in order: API-call quota (not on the
   * usage routes), then rate limit. Each sees `res.locals.user`.
   */
  gates: ApiGates;
  /** Further authenticated routes, registered before `/simulations/batch/:batch_id`. */
  extraRoutes?: RouteSpec[];
  /** Further admin routes. */
  extraAdminRoutes?: RouteSpec[];
}

export type RouteSpec = ["get" | "post" | "patch" | "delete", string, RequestHandler];
