import { execFile, spawn } from "node:child_process";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { TestEnv } from "@simbatch/testing";
import { freePort, run, stopAll, waitListening, type Proc } from "../support/processes.ts";

const ROOT = path.resolve(__dirname, "../..");
/** The command as `npx simbatch` runs it: the workspace bin npm links, running the built CLI. */
const BIN = path.join(ROOT, "node_modules/.bin/simbatch");

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

const scripted = (config: Record<string, unknown>) => ({ template_id: "test/scripted", config });

/**
 * The `simbatch` CLI end to end: the built bin against the real roles (API, worker,
 * reconciler as processes on a fresh database), as a person or a script runs it.
 */
describe("simbatch CLI", () => {
  const env = new TestEnv();
  const procs: Proc[] = [];
  const api = () => procs[0]!;
  let url: string;
  let key: string;
  let dir: string;

  beforeAll(async () => {
    await env.setup();
    const port = await freePort();
    const base = {
      DATABASE_URL: env.databaseUrl,
      REDIS_URL: env.redisUrl,
      REDIS_PREFIX: env.prefix,
      SIMBATCH_TEST_TEMPLATES: "1",
      SIM_STEP_MS: "0",
      LOG_LEVEL: "warn",
      WEBHOOK_ALLOW_PRIVATE_NETWORKS: "true",
    };
    const api = run("apps/api/src/main.ts", { ...base, PORT: String(port), LOG_LEVEL: "info" });
    procs.push(api, run("apps/worker/src/main.ts", { ...base, WORKER_CONCURRENCY: "4" }), run("apps/reconciler/src/main.ts", base));
    await waitListening(api, port);
    url = `http://127.0.0.1:${port}`;
    key = (await env.user("cli-alice", "pro")).key;
    dir = await mkdtemp(path.join(tmpdir(), "simbatch-cli-"));
  }, 90_000);

  afterAll(async () => {
    await stopAll(procs);
    await env.teardown();
  });

  /** Runs the CLI with the key and URL in its environment, stdin from `input`. */
  function cli(args: string[], opts: { input?: string; env?: Record<string, string> } = {}): Promise<CliRun> {
    return new Promise((resolve, reject) => {
      const child = spawn(BIN, args, { env: { ...process.env, SIMBATCH_URL: url, SIMBATCH_API_KEY: key, ...opts.env }, stdio: "pipe" });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d) => (stdout += String(d)));
      child.stderr.on("data", (d) => (stderr += String(d)));
      child.on("error", reject);
      child.on("close", (code) => resolve({ code, stdout, stderr }));
      child.stdin.end(opts.input ?? "");
    });
  }

  async function batchFile(name: string, body: unknown): Promise<string> {
    const file = path.join(dir, name);
    await writeFile(file, JSON.stringify(body));
    return file;
  }

  it("submit --wait --json prints the finished batch and nothing else, and exits 0", async () => {
    const file = await batchFile("ok.json", { simulations: [scripted({ steps: 3, step_ms: 20 }), scripted({ steps: 4, step_ms: 20 })], parallel_jobs: 2 });
    const r = await cli(["batch", "submit", file, "--wait", "--json"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(""); // no progress either: stderr is no terminal here
    const batch = JSON.parse(r.stdout);
    expect(batch).toMatchObject({ status: "COMPLETED", progress: { total_jobs: 2, completed_jobs: 2, progress_percent: 100 } });
    expect(batch.completed_at).not.toBeNull();
    expect(batch.batch_id).toMatch(/^batch_[0-9a-f]{12}$/);
  });

  it("a batch that ends PARTIAL exits 1; without a terminal, progress is one plain line per change", async () => {
    const file = await batchFile("partial.json", { simulations: [scripted({ steps: 2, step_ms: 20 }), scripted({ steps: 5, step_ms: 20, fail_at_step: 3 })] });
    const r = await cli(["batch", "submit", file, "--wait"]);
    expect(r.code).toBe(1);
    const lines = r.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^batch_[0-9a-f]{12}$/);
    expect(lines.slice(1).every((l) => l.startsWith(`${lines[0]} `))).toBe(true);
    expect(lines[lines.length - 1]).toContain(" PARTIAL 100% 2/2 done (completed 1, failed 1");
    expect(r.stdout).not.toContain("\u001b["); // no terminal control codes in a pipe
    expect(new Set(lines).size).toBe(lines.length); // a line only when something changed
  });

  it("a batch where every job fails exits 1, and watch says the same for a finished batch", async () => {
    const file = await batchFile("failed.json", { simulations: [scripted({ steps: 2, step_ms: 10, fail_at_step: 1 })] });
    const r = await cli(["batch", "submit", "--json", file, "--wait"]);
    expect(r.code).toBe(1);
    const batch = JSON.parse(r.stdout);
    expect(batch.status).toBe("FAILED");
    const watch = await cli(["batch", "watch", batch.batch_id]);
    expect(watch.code).toBe(1);
    expect(watch.stdout.trim()).toContain(`${batch.batch_id} FAILED`);
  });

  it("reads the batch from stdin with -", async () => {
    const r = await cli(["batch", "submit", "-"], { input: JSON.stringify({ simulations: [scripted({ steps: 1 })] }) });
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toMatch(/^batch_[0-9a-f]{12}$/);
  });

  it("an HTTP error exits 2 with its code and message on stderr and nothing on stdout", async () => {
    const missing = await cli(["batch", "get", "batch_000000000000"]);
    expect(missing.code).toBe(2);
    expect(missing.stdout).toBe("");
    expect(missing.stderr).toContain("error: NotFound (HTTP 404): ");
    expect(missing.stderr).toContain("not found");
    expect(missing.stderr).toMatch(/request id \S+/);

    const invalid = await cli(["batch", "submit", "-", "--json"], { input: JSON.stringify({ simulations: [{ template_id: "no_such_template" }] }) });
    expect(invalid.code).toBe(2);
    expect(invalid.stdout).toBe("");
    expect(invalid.stderr).toContain("error: ValidationError (HTTP 422)");
    expect(invalid.stderr).toContain("simulations.0.template_id");

    const badKey = await cli(["usage"], { env: { SIMBATCH_API_KEY: "tp_00000000000000000000000000000000" } });
    expect(badKey.code).toBe(2);
    expect(badKey.stderr).toContain("Unauthorized (HTTP 401)");
  });

  it("usage errors exit 2: unknown command, missing argument, bad option value, no key, unreadable file", async () => {
    for (const args of [
      ["batch", "frobnicate"],
      ["batch", "get"],
      ["batch", "list", "--status", "sleeping"],
      ["usage", "--history", "two"],
    ]) {
      const r = await cli(args);
      expect([args.join(" "), r.code, r.stdout]).toEqual([args.join(" "), 2, ""]);
      expect(r.stderr).toMatch(/error: /);
    }
    const noKey = await cli(["usage"], { env: { SIMBATCH_API_KEY: "" } });
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toContain("SIMBATCH_API_KEY");
    const noFile = await cli(["batch", "submit", path.join(dir, "absent.json")]);
    expect(noFile.code).toBe(2);
    expect(noFile.stderr).toContain("cannot read");
    const notJson = await cli(["batch", "submit", "-"], { input: "{simulations:" });
    expect(notJson.code).toBe(2);
    expect(notJson.stderr).toContain("is not JSON");
  });

  it("draws a live progress bar on a terminal", async () => {
    const file = await batchFile("tty.json", { simulations: [scripted({ steps: 8, step_ms: 100 }), scripted({ steps: 12, step_ms: 100 })], parallel_jobs: 1 });
    // script(1) runs the command in a pseudo-terminal, so stdout is a TTY; -e passes its exit code on.
    const command = [BIN, "batch", "submit", file, "--wait"].map((a) => `'${a}'`).join(" ");
    const out = await new Promise<{ code: number; text: string }>((resolve) =>
      execFile(
        "script",
        ["-qfec", command, "/dev/null"],
        { env: { ...process.env, SIMBATCH_URL: url, SIMBATCH_API_KEY: key, COLUMNS: "160" } },
        (err, stdout) => resolve({ code: err ? Number((err as { code?: number }).code) : 0, text: stdout }),
      ),
    );
    expect(out.code).toBe(0);
    const text = out.text;
    expect(text).toContain("\u001b[?25l"); // cursor hidden while the bar draws …
    expect(text).toContain("\u001b[?25h"); // … and shown again at the end
    expect(text).toMatch(/\[█+░+\] \d+% \| [01]\/2 jobs \| (PENDING|RUNNING)/); // a bar part-way
    expect(text).toMatch(/\[█{24}\] 100% \| 2\/2 jobs \| COMPLETED/); // the bar at the end
    expect(text).toMatch(/batch_[0-9a-f]{12} COMPLETED 100% 2\/2 done/); // the closing line under it
  }, 60_000);

  it("batch results -o FILE saves the NDJSON, and report prints each format", async () => {
    const file = await batchFile("sweep.json", { simulations: [1, 2, 3].map((seed) => ({ template_id: "board_meeting", config: { seed } })) });
    const done = JSON.parse((await cli(["batch", "submit", file, "--wait", "--json"])).stdout);
    expect(done.status).toBe("COMPLETED");
    const out = path.join(dir, "results.ndjson");
    const saved = await cli(["batch", "results", done.batch_id, "-o", out]);
    expect([saved.code, saved.stdout]).toEqual([0, ""]);
    const lines = (await readFile(out, "utf8"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.index, l.job_id, l.status])).toEqual(done.job_ids.map((id: string, i: number) => [i, id, "COMPLETED"]));
    expect(lines[0].result.entities.length).toBeGreaterThan(0);

    const piped = await cli(["batch", "results", done.batch_id]);
    expect(piped.stdout).toBe(await readFile(out, "utf8"));

    const json = JSON.parse((await cli(["batch", "report", done.batch_id])).stdout);
    expect(json).toMatchObject({ batch_id: done.batch_id, jobs: { total: 3, completed: 3 }, cost_usd: { total: done.cost.actual_cost_usd } });
    const csv = await cli(["batch", "report", done.batch_id, "--format", "csv"]);
    expect(csv.stdout.split("\r\n")[0]).toBe(
      "index,job_id,status,template_id,temporal_mode,seed,cost_usd,tokens_used,duration_seconds,convergence_score,robustness_grade",
    );
    const md = await cli(["batch", "report", done.batch_id, "--format", "markdown"]);
    expect(md.stdout).toContain(done.batch_id);
    expect(md.stdout).toMatch(/^#/);
  });

  it("job commands, list, usage and templates print the API's JSON with --json", async () => {
    const done = JSON.parse(
      (await cli(["batch", "submit", "-", "--wait", "--json"], { input: JSON.stringify({ simulations: [{ template_id: "board_meeting" }] }) })).stdout,
    );
    const jobId = done.job_ids[0];
    const job = JSON.parse((await cli(["job", "get", jobId, "--json"])).stdout);
    expect(job).toMatchObject({ job_id: jobId, batch_id: done.batch_id, status: "COMPLETED" });
    const result = JSON.parse((await cli(["--json", "job", "result", jobId])).stdout);
    expect(result.job.job_id).toBe(jobId);
    const exported = await cli(["job", "export", jobId, "markdown"]);
    expect(exported.code).toBe(0);
    expect(exported.stdout).toMatch(/^#/);
    const list = JSON.parse((await cli(["batch", "list", "--status", "completed", "--json"])).stdout);
    expect(list.batches.every((b: { status: string }) => b.status === "COMPLETED")).toBe(true);
    expect(list.batches.map((b: { batch_id: string }) => b.batch_id)).toContain(done.batch_id);
    const usage = JSON.parse((await cli(["usage", "--json"])).stdout);
    expect(usage).toMatchObject({ user_id: "cli-alice", tier: "pro" });
    const history = JSON.parse((await cli(["usage", "--history", "3", "--json"])).stdout);
    expect(history.current.user_id).toBe("cli-alice");
    const templates = JSON.parse((await cli(["templates", "--json"])).stdout);
    expect(templates.templates.map((t: { template_id: string }) => t.template_id)).toContain("showcase/board_meeting");
    const human = await cli(["templates"]);
    expect(human.stdout).toContain("showcase/board_meeting");
    expect(() => JSON.parse(human.stdout)).toThrow();
  });

  it("--dry-run checks admission and writes nothing; a batch that would be refused gets the real create's error", async () => {
    const count = async () => JSON.parse((await cli(["batch", "list", "--json"])).stdout).total as number;
    const before = await count();
    const file = await batchFile("dry.json", { simulations: [scripted({ steps: 2, estimate_usd: 0.25 }), scripted({ steps: 3, estimate_usd: 0.5 })] });
    const human = await cli(["batch", "submit", file, "--dry-run"]);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain("dry run: admissible, nothing written");
    expect(human.stdout).toContain("2 jobs, estimated $0.7500 ($0.2500, $0.5000)");
    const json = JSON.parse((await cli(["batch", "submit", file, "--dry-run", "--json"])).stdout);
    expect(json).toMatchObject({ dry_run: true, total_jobs: 2, estimated_cost_usd: 0.75, job_estimates_usd: [0.25, 0.5] });
    expect(await count()).toBe(before);

    const tooLarge = await batchFile("large.json", { simulations: Array.from({ length: 51 }, () => scripted({ steps: 1 })) });
    const refused = await cli(["batch", "submit", tooLarge, "--dry-run"]);
    expect([refused.code, refused.stdout]).toEqual([2, ""]);
    expect(refused.stderr).toContain("error: BatchTooLarge (HTTP 400)");
    expect(refused.stderr).toContain("max_batch_size=50");
    expect(await count()).toBe(before);

    const both = await cli(["batch", "submit", file, "--dry-run", "--wait"]);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain("cannot be used with");
  });

  it("--idempotency-key: the same key and file give the same batch; another file with it is refused", async () => {
    const file = await batchFile("idem.json", { simulations: [scripted({ steps: 1 })] });
    const first = await cli(["batch", "submit", file, "--idempotency-key", "cli-test-key-1"]);
    const again = await cli(["batch", "submit", file, "--idempotency-key", "cli-test-key-1"]);
    expect(first.code).toBe(0);
    expect(again.stdout).toBe(first.stdout);
    const other = await cli(["batch", "submit", "-", "--idempotency-key", "cli-test-key-1"], {
      input: JSON.stringify({ simulations: [scripted({ steps: 2 })] }),
    });
    expect(other.code).toBe(2);
    expect(other.stderr).toContain("IdempotencyKeyReused (HTTP 422)");
  });

  it("pause and resume a running batch, and watch follows the live event stream", async () => {
    const file = await batchFile("slow.json", { simulations: [scripted({ steps: 20, step_ms: 100 }), scripted({ steps: 2, step_ms: 10 })], parallel_jobs: 1 });
    const id = (await cli(["batch", "submit", file])).stdout.trim();
    const paused = await cli(["batch", "pause", id, "--json"]);
    expect(paused.code).toBe(0);
    expect(JSON.parse(paused.stdout)).toMatchObject({ batch_id: id, paused: true });
    expect((await cli(["batch", "get", id])).stdout).toContain("(paused)");
    const resumed = JSON.parse((await cli(["batch", "resume", id, "--json"])).stdout);
    expect(resumed.paused).toBe(false);
    const opened = (
      api()
        .output()
        .match(/batch stream opened/g) ?? []
    ).length;
    const watch = await cli(["batch", "watch", id]);
    expect(watch.code).toBe(0);
    expect(watch.stdout.trim().split("\n").pop()).toContain(`${id} COMPLETED 100% 2/2 done`);
    expect(
      (
        api()
          .output()
          .match(/batch stream opened/g) ?? []
      ).length,
    ).toBe(opened + 1);
  });

  it("the built package loads as CommonJS and as an ES module", async () => {
    const probe = (code: string, type: "commonjs" | "module") =>
      new Promise<string>((resolve, reject) =>
        execFile(process.execPath, [`--input-type=${type}`, "-e", code], { cwd: ROOT }, (err, stdout) => (err ? reject(err) : resolve(stdout.trim()))),
      );
    const show =
      "[typeof m.Simbatch, new m.NotFound({status: 404, code: 'NotFound', message: 'x'}) instanceof m.SimbatchError, new m.NotFound({status: 404, code: 'NotFound', message: 'x'}).name].join(' ')";
    expect(await probe(`const m = require("@simbatch/client"); console.log(${show})`, "commonjs")).toBe("function true NotFound");
    expect(await probe(`import * as m from "@simbatch/client"; console.log(${show})`, "module")).toBe("function true NotFound");
  });
});
