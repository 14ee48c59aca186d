import { createBullBoard } from "@bull-board/api";
import { BullMQAdapter } from "@bull-board/api/bullMQAdapter";
import { ExpressAdapter } from "@bull-board/express";
import type { Queue } from "@simbatch/queue";
import type { Express } from "express";

export const QUEUE_BOARD_PATH = "/admin/queues";

/**
 * bull-board over the given BullMQ queues, as an Express app to mount at
 * `QUEUE_BOARD_PATH` (its page, its JSON API and its static assets).
 *
 * Read-only: Postgres decides what is in BullMQ (the dispatcher releases jobs,
 * the sweep repairs what is missing), so emptying, pausing, retrying or adding
 * jobs by hand would fight it; the board refuses those actions server-side.
 */
export function queueBoard(queues: readonly Queue[], redisPrefix: string): Express {
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(QUEUE_BOARD_PATH);
  createBullBoard({
    queues: queues.map((q) => new BullMQAdapter(q, { readOnlyMode: true, description: `Redis keys ${redisPrefix}:${q.name}:*` })),
    serverAdapter,
    options: { uiConfig: { boardTitle: "simbatch queues" } },
  });
  const board = serverAdapter.getRouter() as Express;
  board.disable("x-powered-by");
  return board;
}
