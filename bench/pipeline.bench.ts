/**
 * End-to-end throughput: batches of 1-step `test/scripted` jobs from HTTP
 * admission to every batch COMPLETED (API, dispatcher, BullMQ, worker, event
 * stream, reconciler, Postgres), against a baseline measured in the same run:
 * raw BullMQ processing the same number of no-op jobs with the same worker
 * concurrency on the same Redis. Prints jobs/s and the ratio; asserts nothing.
 */
import { Queue, Worker } from "bullmq";
import { createRedis } from "@simbatch/queue";
import globalSetup from "@simbatch/testing/src/global-setup.ts";
import { waitFor } from "@simbatch/testing";
import { Stack } from "../tests/support/stack.ts";

const BATCHES = Number(process.env.BENCH_BATCHES ?? 5);
const JOBS_PER_BATCH = 100;
const CONCURRENCY = 8;
const TOTAL = BATCHES * JOBS_PER_BATCH;

async function baseline(): Promise<number> {
  const connection = createRedis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379", "consumer");
  const prefix = `bench${Date.now()}`;
  const queue = new Queue("noop", { connection, prefix });
  let done = 0;
  const worker = new Worker("noop", async () => undefined, { connection, prefix, concurrency: CONCURRENCY });
  worker.on("completed", () => void done++);
  await worker.waitUntilReady();
  const t0 = performance.now();
  await queue.addBulk(Array.from({ length: TOTAL }, (_, i) => ({ name: "noop", data: { i }, opts: { priority: 50, removeOnComplete: true } })));
  await waitFor(() => done >= TOTAL, { timeoutMs: 120_000, intervalMs: 5, what: "baseline" });
  const seconds = (performance.now() - t0) / 1000;
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  connection.disconnect();
  return TOTAL / seconds;
}

async function pipeline(): Promise<number> {
  const stack = await new Stack({ workers: [CONCURRENCY] }).start();
  try {
    const user = await stack.env.user("bench", "enterprise");
    const body = {
      parallel_jobs: 100,
      simulations: Array.from({ length: JOBS_PER_BATCH }, () => ({ template_id: "test/scripted", config: { steps: 1 } })),
    };
    const t0 = performance.now();
    const ids: string[] = [];
    for (let b = 0; b < BATCHES; b++) {
      const res = await stack.http().post("/simulations/batch").set("X-API-Key", user.key).send(body);
      if (res.status !== 202) throw new Error(`batch create failed: ${res.status} ${JSON.stringify(res.body)}`);
      ids.push(res.body.batch_id);
    }
    for (const id of ids) await stack.waitBatch(user.key, id, (b) => b.status === "COMPLETED", 300_000);
    return TOTAL / ((performance.now() - t0) / 1000);
  } finally {
    await stack.stop();
  }
}

async function main(): Promise<void> {
  await globalSetup();
  const base = await baseline();
  const ours = await pipeline();
  console.log(`pipeline: ${TOTAL} jobs in ${BATCHES} batches, worker concurrency ${CONCURRENCY}`);
  console.log(`  raw BullMQ no-op baseline  ${base.toFixed(0).padStart(8)} jobs/s`);
  console.log(`  simbatch end to end        ${ours.toFixed(0).padStart(8)} jobs/s`);
  console.log(`  ratio simbatch / baseline  ${(ours / base).toFixed(3)}`);
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
