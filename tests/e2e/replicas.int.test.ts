import request from "supertest";
import type { Express } from "express";
import { Stack, scripted, FINAL_JOB } from "../support/stack.ts";

/**
 * Two API replicas on the same Postgres and Redis, each with its own clients:
 * what one accepts the other can cancel, and a user's rate limit and API-call
 * quota hold across both.
 */
describe("API replicas", () => {
  const stack = new Stack({ workers: [1], rateLimitEnabled: true, limits: { basic: { ratePerMinute: 4, apiCalls: 1_000 } } });
  let replicaB: Express;

  beforeAll(async () => {
    await stack.start();
    replicaB = stack.replica({ rateLimitEnabled: true });
  });
  afterAll(() => stack.stop());

  it("cancels on one replica a job accepted and running through the other", async () => {
    const alice = await stack.env.user("alice", "pro");
    const res = await stack
      .http()
      .post("/simulations")
      .set("X-API-Key", alice.key)
      .send(scripted({ steps: 100, step_ms: 50 }));
    await stack.waitJob(alice.key, res.body.job_id, (j) => j.status === "RUNNING" && j.progress_percent > 0);
    const cancel = await request(replicaB).post(`/simulations/${res.body.job_id}/cancel`).set("X-API-Key", alice.key).send({ reason: "from B" });
    expect(cancel.status).toBe(200);
    const job = await stack.waitJob(alice.key, res.body.job_id, (j) => FINAL_JOB.has(j.status));
    expect(job).toMatchObject({ status: "CANCELLED", cancel_reason: "from B" });
    expect(job.tokens_used).toBeLessThan(100 * 100);
  });

  it("holds one user's rate limit across replicas", async () => {
    const bob = await stack.env.user("bob", "basic");
    const onA = () => stack.http().get("/simulations").set("X-API-Key", bob.key);
    const onB = () => request(replicaB).get("/simulations").set("X-API-Key", bob.key);
    expect((await onA()).status).toBe(200);
    expect((await onB()).status).toBe(200);
    expect((await onA()).status).toBe(200);
    const fourth = await onB();
    expect(fourth.status).toBe(200);
    expect(fourth.headers.ratelimit).toMatch(/remaining=0/);
    const fifth = await onA();
    expect(fifth.status).toBe(429);
    expect(fifth.body).toMatchObject({ error: "RateLimitExceeded", tier: "basic", limit: 4 });
  });
});
