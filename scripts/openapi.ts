import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { buildOpenApiDocument, stableJson } from "@simbatch/contracts";

/** Where the committed document lives, relative to the repository root (scripts run from there). */
export const OPENAPI_PATH = "docs/openapi.json";

/** The document's exact text: what `docs/openapi.json` must hold. */
export function renderOpenApi(): string {
  return stableJson(buildOpenApiDocument());
}

// Write only when run as a script, so tests can import renderOpenApi without touching the file.
if (process.argv[1]?.endsWith(join("scripts", "openapi.ts"))) {
  const out = resolve(process.cwd(), OPENAPI_PATH);
  writeFileSync(out, renderOpenApi());
  console.log(`wrote ${out}`);
}
