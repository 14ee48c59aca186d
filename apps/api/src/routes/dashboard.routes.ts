import { dashboardSnapshot } from "@simbatch/core";
import { randomBytes } from "node:crypto";
import type { RequestHandler, Response } from "express";
import type { ApiDeps } from "../deps.ts";
import { QUEUE_BOARD_PATH } from "../http/queue-board.ts";
import { renderDashboardPage } from "../views/dashboard-page.ts";

/** Where the page polls (app.ts registers the routes with literal paths, which docs/openapi.json is checked against). */
const DASHBOARD_DATA_PATH = "/admin/dashboard/data";
/** How often the page asks for a new snapshot. */
export const DASHBOARD_POLL_MS = 1_500;

/** Operator figures change every second: nothing here may be cached on the way. */
const noStore = (res: Response) => res.setHeader("Cache-Control", "no-store");

/** GET /admin/dashboard (the page, with the snapshot rendered in) and GET /admin/dashboard/data (the snapshot it polls). */
export function dashboardHandlers(deps: ApiDeps) {
  const page: RequestHandler = async (_req, res) => {
    const snapshot = await dashboardSnapshot(deps);
    const nonce = randomBytes(16).toString("base64");
    noStore(res);
    res.setHeader(
      "Content-Security-Policy",
      `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
    );
    res.type("html").send(renderDashboardPage(snapshot, { nonce, dataUrl: DASHBOARD_DATA_PATH, pollMs: DASHBOARD_POLL_MS, queuesUrl: `${QUEUE_BOARD_PATH}/` }));
  };
  const data: RequestHandler = async (_req, res) => {
    noStore(res);
    res.json(await dashboardSnapshot(deps));
  };
  return { page, data };
}
