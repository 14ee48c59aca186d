import { randomBytes } from "node:crypto";
import { Client } from "pg";
import { DEFAULT_TIER_LIMITS, type Tier, type TierLimits } from "@simbatch/config";
import type { Clock } from "@simbatch/contracts";
import { createApiKey, upsertUser } from "@simbatch/core";
import { wireCore, type Wired } from "@simbatch/runtime";
import { createLogger } from "@simbatch/logger";
import { createRedis, type Redis } from "@simbatch/queue";
import { withAdminClient } from "./admin-client.ts";
import { dbUrl, newTestDbName, REDIS_URL, templateDb } from "./constants.ts";

/** Cloning fails while another session is connected to the template (55006): retry briefly. */
async function createFromTemplate(admin: Client, name: string, template: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await admin.query(`CREATE DATABASE "${name}" TEMPLATE "${template}"`);
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== "55006" || attempt >= 20) throw err;
      await new Promise((r) => setTimeout(r, 100 * attempt));
    }
  }
}

export interface TestEnvOptions {
  limits?: Partial<Record<Tier, Partial<TierLimits>>>;
  clock?: Clock;
  /** As WEBHOOK_RETRY_BASE_MS. */
  webhookRetryBaseMs?: number;
}

/** A fresh database (cloned from the migrated template) and Redis prefix for one test file. */
export class TestEnv {
  readonly dbName = newTestDbName();
  readonly prefix = `t${randomBytes(4).toString("hex")}`;
  readonly databaseUrl = dbUrl(this.dbName);
  readonly redisUrl = REDIS_URL;
  core!: Wired;
  private extra: Redis[] = [];

  constructor(private readonly opts: TestEnvOptions = {}) {}

  async setup(): Promise<this> {
    await withAdminClient((admin) => createFromTemplate(admin, this.dbName, templateDb()));
    const limits = structuredClone(DEFAULT_TIER_LIMITS);
    for (const [tier, l] of Object.entries(this.opts.limits ?? {})) Object.assign(limits[tier as Tier], l);
    this.core = wireCore({
      databaseUrl: this.databaseUrl,
      redisUrl: REDIS_URL,
      redisPrefix: this.prefix,
      testTemplates: true,
      limits,
      logger: createLogger({ service: "test", level: process.env.TEST_LOG_LEVEL ?? "error" }),
      redisRole: "consumer",
      clock: this.opts.clock,
      webhookRetryBaseMs: this.opts.webhookRetryBaseMs,
    });
    return this;
  }

  /** Another Redis connection (blocking readers need their own); closed at teardown. */
  redis(): Redis {
    const r = createRedis({ url: REDIS_URL }, "consumer");
    this.extra.push(r);
    return r;
  }

  async user(id: string, tier: Tier = "pro"): Promise<{ id: string; key: string }> {
    await upsertUser(this.core.db, id, tier);
    const key = await createApiKey(this.core.db, id, "test");
    return { id, key: key.api_key };
  }

  async teardown(): Promise<void> {
    const keys = await this.core.redis.keys(`${this.prefix}:*`).catch(() => [] as string[]);
    if (keys.length > 0) await this.core.redis.del(...keys).catch(() => undefined);
    await this.core.close();
    for (const r of this.extra) r.disconnect();
    await withAdminClient((admin) => admin.query(`DROP DATABASE IF EXISTS "${this.dbName}" WITH (FORCE)`));
  }
}
