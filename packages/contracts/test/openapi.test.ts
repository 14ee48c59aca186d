import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { OPENAPI_PATH, renderOpenApi } from "../../../scripts/openapi.ts";

const root = resolve(__dirname, "../../..");
const committed = readFileSync(resolve(root, OPENAPI_PATH), "utf8");
const doc = JSON.parse(committed) as {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, { responses: Record<string, unknown>; security: unknown[] }>>;
  components: { schemas: Record<string, unknown>; securitySchemes: Record<string, unknown> };
};

/** Every `routes.add("method", "path"` of the app, in OpenAPI form (`:p` and `*p` → `{p}`). */
function appRoutes(): string[] {
  const src = readFileSync(resolve(root, "apps/api/src/app.ts"), "utf8");
  return [...src.matchAll(/routes\.add\("(\w+)", "([^"]+)"/g)].map(([, method, path]) => `${method} ${path!.replace(/[:*]([A-Za-z_]+)/g, "{$1}")}`);
}

describe("docs/openapi.json", () => {
  it("is what the generator produces now (regenerate: node --import tsx scripts/openapi.ts)", () => {
    expect(committed).toBe(renderOpenApi());
  });

  it("documents every route of app.ts and no other", () => {
    const routes = appRoutes();
    expect(routes.length).toBeGreaterThan(20);
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m} ${path}`));
    expect(documented.sort()).toEqual(routes.sort());
  });

  it("has the shape of an OpenAPI 3.1 document", () => {
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.info).toEqual(expect.objectContaining({ title: expect.any(String), version: expect.any(String) }));
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual(["AdminBasic", "AdminBearer", "ApiKey"]);
    for (const [path, ops] of Object.entries(doc.paths)) {
      expect(path.startsWith("/")).toBe(true);
      for (const op of Object.values(ops)) {
        expect(Object.keys(op.responses).length).toBeGreaterThan(1);
        expect(Array.isArray(op.security)).toBe(true);
      }
    }
  });

  it("resolves every $ref to a component", () => {
    const refs = [...committed.matchAll(/"\$ref": "#\/components\/(schemas|headers)\/([^"]+)"/g)];
    expect(refs.length).toBeGreaterThan(0);
    const components = doc.components as unknown as Record<string, Record<string, unknown>>;
    for (const [, kind, name] of refs) expect(components[kind!]).toHaveProperty([name!]);
  });

  it("gives batch items the single simulation request schema", () => {
    const batch = doc.components.schemas.CreateBatchRequest as { properties: { simulations: { items: unknown } } };
    expect(batch.properties.simulations.items).toEqual({ $ref: "#/components/schemas/SimulationRequest" });
  });
});
