import { Simbatch } from "../src/index.ts";
import { batchBody, json, startServer } from "./server.ts";

const id = (i: number) => `batch_${i.toString(16).padStart(12, "0")}`;
const jobId = (i: number) => `sim_${i.toString(16).padStart(12, "0")}`;

/** The list routes as the contract has them: newest first, `page` from 1, `page_size` up to 100. */
function lister(all: () => string[], key: "batches" | "jobs") {
  return (url: URL) => {
    const page = Number(url.searchParams.get("page") ?? 1);
    const size = Number(url.searchParams.get("page_size") ?? 20);
    const ids = all();
    const items = ids.slice((page - 1) * size, page * size).map((x) => (key === "batches" ? batchBody({ batch_id: x }) : { job_id: x }));
    return { [key]: items, total: ids.length, page, page_size: size };
  };
}

describe("pagination iterators", () => {
  it("listBatches walks every page in order, passing the filter on", async () => {
    const ids = Array.from({ length: 45 }, (_, i) => id(45 - i));
    const list = lister(() => ids, "batches");
    const server = await startServer((req, res) => json(res, 200, list(new URL(req.url!, "http://x"))));
    try {
      const c = new Simbatch({ baseUrl: server.url, apiKey: "k" });
      const got: string[] = [];
      for await (const b of c.listBatches({ status: "running", page_size: 20 })) got.push(b.batch_id);
      expect(got).toEqual(ids);
      expect(server.seen.map((s) => s.url)).toEqual([
        "/simulations/batch?status=running&page_size=20&page=1",
        "/simulations/batch?status=running&page_size=20&page=2",
        "/simulations/batch?status=running&page_size=20&page=3",
      ]);
    } finally {
      await server.close();
    }
  });

  it("fetches pages lazily: breaking out early stops the requests", async () => {
    const ids = Array.from({ length: 250 }, (_, i) => jobId(i));
    const list = lister(() => ids, "jobs");
    const server = await startServer((req, res) => json(res, 200, list(new URL(req.url!, "http://x"))));
    try {
      const c = new Simbatch({ baseUrl: server.url, apiKey: "k" });
      let n = 0;
      for await (const _ of c.listJobs({ page_size: 100 })) if (++n === 150) break;
      expect(server.seen).toHaveLength(2);
      expect(server.seen[0]!.url).toBe("/simulations?page_size=100&page=1");
    } finally {
      await server.close();
    }
  });

  it("yields each item once when new ones arrive during the walk (they push older ones onto the next page)", async () => {
    const ids = Array.from({ length: 5 }, (_, i) => id(5 - i));
    const list = lister(() => ids, "batches");
    const server = await startServer((req, res) => {
      const body = list(new URL(req.url!, "http://x"));
      if (server.seen.length === 1) ids.unshift(id(6)); // a batch created after page 1 was read
      json(res, 200, body);
    });
    try {
      const c = new Simbatch({ baseUrl: server.url, apiKey: "k" });
      const got: string[] = [];
      for await (const b of c.listBatches({ page_size: 2 })) got.push(b.batch_id);
      expect(got).toEqual([id(5), id(4), id(3), id(2), id(1)]);
    } finally {
      await server.close();
    }
  });

  it("ends on an empty list", async () => {
    const server = await startServer((_req, res) => json(res, 200, { jobs: [], total: 0, page: 1, page_size: 20 }));
    try {
      const got = [];
      for await (const j of new Simbatch({ baseUrl: server.url, apiKey: "k" }).listJobs()) got.push(j);
      expect(got).toEqual([]);
      expect(server.seen).toHaveLength(1);
    } finally {
      await server.close();
    }
  });
});
