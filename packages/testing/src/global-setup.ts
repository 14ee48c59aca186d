import { Client } from "pg";
import { migrateDeploy } from "@simbatch/db";
import { dbUrl, PG_ADMIN_URL, TEMPLATE_DB } from "./constants.ts";

/** Builds the template database once per run with the real migrations; test files clone it. */
export default async function globalSetup(): Promise<void> {
  const admin = new Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  try {
    // Leftovers of an interrupted earlier run.
    const stale = await admin.query("SELECT datname FROM pg_database WHERE datname LIKE 'simbatch_t_%'");
    for (const row of stale.rows) await admin.query(`DROP DATABASE IF EXISTS "${row.datname}" WITH (FORCE)`);
    await admin.query(`DROP DATABASE IF EXISTS "${TEMPLATE_DB}" WITH (FORCE)`);
    await admin.query(`CREATE DATABASE "${TEMPLATE_DB}"`);
  } finally {
    await admin.end();
  }
  await migrateDeploy(dbUrl(TEMPLATE_DB));
}
