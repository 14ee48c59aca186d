// Prisma CLI configuration. The CLI runs fully offline: no engine binaries are
// downloaded. It uses the WASM schema engine through a driver adapter; the
// adapter instance comes from @prisma/adapter-pg 7.x (installed under the npm
// alias `prisma-adapter-pg-cli`) because the 6.19 adapter cannot map Postgres'
// `name` column type during introspection (prisma/orm#27403).
import path from "node:path";
import { defineConfig } from "prisma/config";
import { PrismaPg } from "prisma-adapter-pg-cli";

/**
 * The adapter's executeScript splits a migration on every `;`, which breaks
 * function bodies (`$$ ... ; ... $$`). Postgres takes a whole script in one
 * simple query (one implicit transaction), so send it as written.
 */
class PrismaPgWholeScripts extends PrismaPg {
  override async connect() {
    const adapter = await super.connect();
    const inner = adapter as unknown as { client: { query(sql: string): Promise<unknown> }; onError(err: unknown): never };
    adapter.executeScript = async (script: string) => {
      try {
        await inner.client.query(script);
      } catch (err) {
        inner.onError(err);
      }
    };
    return adapter;
  }
}

const DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/simbatch";
// schema.prisma reads env("DATABASE_URL"); give it the same default as the apps.
process.env.DATABASE_URL ??= DEFAULT_DATABASE_URL;

export default defineConfig({
  experimental: { adapter: true },
  engine: "js",
  schema: path.join("prisma", "schema.prisma"),
  migrations: { path: path.join("prisma", "migrations") },
  async adapter() {
    return new PrismaPgWholeScripts({ connectionString: process.env.DATABASE_URL });
  },
});
