import { periodOf } from "@simbatch/contracts";
import { apiCallsBase, usageHistory, usageView } from "@simbatch/core";
import type { RequestHandler } from "express";
import { z } from "zod";
import type { ApiDeps } from "../deps.ts";
import { user } from "../http/auth.ts";
import { parse } from "../http/validate.ts";

// Query values are strings; only plain digits are accepted (no "6.0", no "+6").
const HistoryQuerySchema = z.object({
  periods: z
    .string()
    .regex(/^\d+$/, "must be an integer")
    .transform(Number)
    .pipe(z.number().int().min(1, "must be 1..24").max(24, "must be 1..24"))
    .optional(),
});

export function usageHandlers(deps: ApiDeps) {
  const current = async (u: { id: string; tier: keyof ApiDeps["limits"] }) => {
    const now = deps.clock.now();
    const period = periodOf(now);
    const apiCalls = deps.apiCalls ? await deps.apiCalls.used(u.id, period) : await apiCallsBase(deps.db, u.id, period);
    return usageView(deps.db, u, deps.limits[u.tier], apiCalls, now);
  };

  const usage: RequestHandler = async (_req, res) => {
    res.json(await current(user(res)));
  };

  const history: RequestHandler = async (req, res) => {
    const raw = req.query.periods === "" ? {} : req.query;
    const q = parse(HistoryQuerySchema, raw);
    const cur = await current(user(res));
    // Pending calls of a just-ended period reach Postgres with the next flush: flush now so history is whole.
    await deps.apiCalls?.flush();
    res.json({ current: cur, history: await usageHistory(deps.db, user(res).id, cur.period, q.periods ?? 6) });
  };

  return { usage, history };
}
