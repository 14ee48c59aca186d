/**
 * Creates the database when missing and applies prisma/migrations, on a direct
 * connection: DIRECT_DATABASE_URL when set (DATABASE_URL goes through a pooler
 * such as PgBouncer in transaction mode), else DATABASE_URL.
 */
import { CommonEnvSchema, loadEnvOrExit } from "@simbatch/config";
import { ensureDatabase, migrateDeploy } from "@simbatch/db";

export async function migrate(url: string): Promise<void> {
  await ensureDatabase(url);
  await migrateDeploy(url);
}

if (require.main === module) {
  const env = loadEnvOrExit(CommonEnvSchema, "migrate");
  migrate(env.DIRECT_DATABASE_URL ?? env.DATABASE_URL)
    .then(() => process.stdout.write(`${JSON.stringify({ level: "info", service: "migrate", message: "database ready" })}\n`))
    .catch((err) => {
      process.stderr.write(`${JSON.stringify({ level: "error", service: "migrate", message: "migration failed", error: String(err?.stderr ?? err) })}\n`);
      process.exit(1);
    });
}
