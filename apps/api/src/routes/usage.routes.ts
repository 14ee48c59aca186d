import { periodOf, UsageHistoryQuerySchema } from "@simbatch/contracts";
import { usageHistory, usageView } from "@simbatch/core";
import type { RequestHandler } from "express";
import type { ApiDeps } from "../deps.ts";
import { user } from "../http/auth.ts";
import { parse } from "../http/validate.ts";

export function usageHandlers(deps: ApiDeps) {
  const current = async (u: { id: string; tier: keyof ApiDeps["limits"] }) => {
    const now = deps.clock.now();
    const period = periodOf(now);
    const apiCalls = await deps.apiCalls.used(u.id, period);
    return usageView(deps.db, u, deps.limits[u.tier], apiCalls, now);
  };

  const usage: RequestHandler = async (_req, res) => {
    res.json(await current(user(res)));
  };

  const history: RequestHandler = async (req, res) => {
    const q = parse(UsageHistoryQuerySchema, req.query);
    const cur = await current(user(res));
    // Pending calls of a just-ended period reach Postgres with the next flush: flush now so history is whole.
    await deps.apiCalls.flush();
    res.json({ current: cur, history: await usageHistory(deps.db, user(res).id, cur.period, q.periods ?? 6) });
  };

  return { usage, history };
}
