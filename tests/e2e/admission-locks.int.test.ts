import { Client } from "pg";
import { admitBatch, resolveSimulation, type ResolvedSimulation } from "@simbatch/core";
import { TestEnv, waitFor } from "@simbatch/testing";

/**
 * How admission locks the user row: a tier whose limits count usage takes it
 * exclusively (admissions of one user run one at a time: limits cannot be
 * overshot); a tier with nothing counted shares it (admissions run side by side,
 * still ordered against a tier change, which takes the row exclusively).
 */
describe("admission lock modes", () => {
  const env = new TestEnv();
  let holder: Client;
  let sims: ResolvedSimulation[];
  const opts = { parallelJobs: 3, failFast: false, budgetCapMicros: null, priority: 50, metadata: null };

  beforeAll(async () => {
    await env.setup();
    holder = new Client({ connectionString: env.databaseUrl });
    await holder.connect();
    const r = resolveSimulation(env.core.catalog, { template_id: "test/scripted", config: { steps: 1 } });
    if (!r.ok) throw new Error("bad simulation");
    sims = [r.value, r.value];
  });
  afterAll(async () => {
    await holder.end();
    await env.teardown();
  });

  /** Backends of this database waiting for a lock (other than the holder). */
  const lockWaiters = async () => {
    const r = await holder.query(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()`,
    );
    return r.rows[0].n as number;
  };

  it("runs an unlimited tier's admission while another admission shares the user row", async () => {
    await env.user("ent", "enterprise");
    await holder.query("BEGIN");
    await holder.query("SELECT 1 FROM users WHERE id = 'ent' FOR SHARE");
    try {
      const { created: batch } = await admitBatch(env.core, "ent", sims, opts, null, "enterprise");
      expect(batch!.totalJobs).toBe(2);
    } finally {
      await holder.query("COMMIT");
    }
  });

  it("makes a counted tier's admission wait until it holds the user row alone", async () => {
    await env.user("pro", "pro");
    await holder.query("BEGIN");
    await holder.query("SELECT 1 FROM users WHERE id = 'pro' FOR SHARE");
    let done = false;
    const admitted = admitBatch(env.core, "pro", sims, opts, null, "pro").then((r) => ((done = true), r));
    await waitFor(async () => (await lockWaiters()) > 0, { what: "the admission waiting for the user row" });
    expect(done).toBe(false);
    await holder.query("COMMIT");
    const { created: batch } = await admitted;
    expect(batch!.totalJobs).toBe(2);
  });

  it("takes the row exclusively when the tier became counted after authentication read it", async () => {
    await env.user("changed", "pro");
    await holder.query("BEGIN");
    await holder.query("SELECT 1 FROM users WHERE id = 'changed' FOR SHARE");
    // The caller saw 'enterprise' (stale): the locked row says 'pro', so the admission upgrades its lock and waits.
    const admitted = admitBatch(env.core, "changed", sims, opts, null, "enterprise");
    await waitFor(async () => (await lockWaiters()) > 0, { what: "the upgraded admission waiting" });
    await holder.query("COMMIT");
    await admitted;
    const used = await env.core.db.$queryRaw<{ n: bigint }[]>`SELECT simulations AS n FROM usage_totals WHERE user_id = 'changed'`;
    expect(Number(used[0]!.n)).toBe(2);
  });
});
