/** Creates the database when missing and applies prisma/migrations. */
import { CommonEnvSchema, loadEnvOrExit } from "@simbatch/config";
import { ensureDatabase, migrateDeploy } from "@simbatch/db";

export async function migrate(url: string): Promise<void> {
  await ensureDatabase(url);
  await migrateDeploy(url);
}

if (require.main === module) {
  const env = loadEnvOrExit(CommonEnvSchema, "migrate");
  migrate(env.DATABASE_URL)
    .then(() => process.stdout.write(`${JSON.stringify({ level: "info", service: "migrate", message: "database ready" })}\n`))
    .catch((err) => {
      process.stderr.write(`${JSON.stringify({ level: "error", service: "migrate", message: "migration failed", error: String(err?.stderr ?? err) })}\n`);
      process.exit(1);
    });
}
