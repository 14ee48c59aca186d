import { migrateDeploy } from "@simbatch/db";
import { withAdminClient } from "./admin-client.ts";
import { dbUrl, newTemplateName } from "./constants.ts";

const STALE_AFTER_S = 3 * 3600;

/**
 * Builds a template database once per run with the real migrations; each test
 * file clones it. Names carry their creation time: leftovers of runs that died
 * are dropped once stale, and concurrent runs never touch each other's.
 */
export default async function globalSetup(): Promise<void> {
  const template = newTemplateName();
  await withAdminClient(async (admin) => {
    const rows = await admin.query<{ datname: string }>("SELECT datname FROM pg_database WHERE datname ~ '^simbatch_(t|tpl)_[0-9]+_'");
    const now = Date.now() / 1000;
    for (const { datname } of rows.rows) {
      const created = Number(/_(\d+)_/.exec(datname)?.[1]);
      if (now - created > STALE_AFTER_S) await admin.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
    }
    await admin.query(`CREATE DATABASE "${template}"`);
  });
  await migrateDeploy(dbUrl(template));
  process.env.SIMBATCH_TEST_TEMPLATE_DB = template;
}
