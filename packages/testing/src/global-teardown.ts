import { Client } from "pg";
import { PG_ADMIN_URL } from "./constants.ts";

export default async function globalTeardown(): Promise<void> {
  const template = process.env.SIMBATCH_TEST_TEMPLATE_DB;
  if (!template) return;
  const admin = new Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS "${template}" WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}
