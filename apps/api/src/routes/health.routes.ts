import type { RequestHandler } from "express";
import type { ApiDeps } from "../deps.ts";

const within = <T>(p: Promise<T>, ms: number): Promise<T> =>
  Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error("timeout")), ms).unref())]);

export function healthHandlers(deps: ApiDeps) {
  const root: RequestHandler = (_req, res) => {
    res.json({ service: "simbatch", version: "0.1.0", health: "/health", ready: "/ready", templates: "/simulations/templates" });
  };
  const health: RequestHandler = (_req, res) => {
    res.json({ status: "ok" });
  };
  /** 200 when Postgres and Redis answer, else 503 naming what is down. */
  const ready: RequestHandler = async (_req, res) => {
    const [pg, redis] = await Promise.allSettled([within(deps.db.$queryRaw`SELECT 1`, 2000), within(deps.redis.ping(), 2000)]);
    const checks = { postgres: pg.status === "fulfilled" ? "ok" : "down", redis: redis.status === "fulfilled" ? "ok" : "down" };
    const down = Object.entries(checks)
      .filter(([, v]) => v === "down")
      .map(([k]) => k);
    if (down.length === 0) return res.json({ status: "ready", checks });
    res.status(503).json({
      error: "ServiceUnavailable",
      message: `Not ready: ${down.join(" and ")} unreachable`,
      detail: checks,
      request_id: res.getHeader("X-Request-Id") ?? null,
    });
  };
  return { root, health, ready };
}
