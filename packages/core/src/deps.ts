import type { Tier, TierLimits } from "@simbatch/config";
import type { Clock } from "@simbatch/contracts";
import type { Db } from "@simbatch/db";
import type { Catalog } from "@simbatch/engine";
import type { Logger } from "@simbatch/logger";
import type { ProgressChannel, SimulationQueue, StopSignals, WebhookQueue, WorkerRegistry } from "@simbatch/queue";

/** Everything the domain needs, passed in by each app's composition root. */
export interface CoreDeps {
  db: Db;
  queue: SimulationQueue;
  signals: StopSignals;
  registry: WorkerRegistry;
  catalog: Catalog;
  limits: Record<Tier, TierLimits>;
  clock: Clock;
  logger: Logger;
  /** Live-progress news (Redis pub/sub): what changed, for the API's streams. */
  progress: ProgressChannel;
  /** Deliveries of batch-end webhooks. */
  webhooks: WebhookQueue;
}

// Money conversions have one home (packages/contracts/src/money.ts); re-exported for the domain's callers.
export { microsToUsd, usd } from "@simbatch/contracts";
