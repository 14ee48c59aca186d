import { withAdminClient } from "./admin-client.ts";

export default async function globalTeardown(): Promise<void> {
  const template = process.env.SIMBATCH_TEST_TEMPLATE_DB;
  if (!template) return;
  await withAdminClient((admin) => admin.query(`DROP DATABASE IF EXISTS "${template}" WITH (FORCE)`));
}
