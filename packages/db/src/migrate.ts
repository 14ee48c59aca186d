import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { Client } from "pg";

const run = promisify(execFile);
const REPO_ROOT = path.resolve(__dirname, "../../..");

/** Creates the database named in `url` when it is missing (connects to `postgres`). */
export async function ensureDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.slice(1));
  if (!/^[A-Za-z0-9_-]+$/.test(name)) throw new Error("DATABASE_URL: database name must be [A-Za-z0-9_-]+");
  const admin = new URL(url);
  admin.pathname = "/postgres";
  const client = new Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    const found = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
    if (found.rowCount === 0) {
      await client.query(`CREATE DATABASE "${name}"`).catch((err: { code?: string }) => {
        if (err.code !== "42P04") throw err; // created meanwhile by another process
      });
    }
  } finally {
    await client.end();
  }
}

/** Applies prisma/migrations with the offline Prisma CLI (`prisma migrate deploy`). */
export async function migrateDeploy(url: string): Promise<void> {
  const prismaBin = path.join(REPO_ROOT, "node_modules", ".bin", "prisma");
  // The CLI child inherits this process's environment (PATH, proxies) with the target database set.
  // eslint-disable-next-line no-restricted-properties
  await run(prismaBin, ["migrate", "deploy"], { cwd: REPO_ROOT, env: { ...process.env, DATABASE_URL: url } });
}
