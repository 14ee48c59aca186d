import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { parse, parseAllDocuments } from "yaml";
import { commandOf, parseDockerfile } from "../support/dockerfile.ts";
import { exportedSeriesNames } from "../support/metric-names.ts";

const ROOT = path.resolve(__dirname, "../..");
const K8S = path.join(ROOT, "deploy/k8s");
const read = (p: string) => readFileSync(path.join(ROOT, p), "utf8");

type Obj = Record<string, any>;

/** Every object of every manifest in deploy/k8s (not its subfolders: those are Helm values). */
function manifests(): Obj[] {
  return readdirSync(K8S)
    .filter((f) => /\.ya?ml$/.test(f))
    .flatMap((f) =>
      parseAllDocuments(readFileSync(path.join(K8S, f), "utf8")).map((d) => {
        if (d.errors.length > 0) throw new Error(`${f}: ${d.errors[0]!.message}`);
        return { ...(d.toJS() as Obj), __file: f } as Obj;
      }),
    )
    .filter((o) => o.kind);
}

const ofKind = (kind: string) => manifests().filter((m) => m.kind === kind);
const envOf = (c: Obj): Record<string, string> => Object.fromEntries((c.env ?? []).map((e: Obj) => [e.name, e.value]));
const roleOf = (c: Obj): string => c.args?.[0];

/** The image's HEALTHCHECK command, read from the Dockerfile. */
function imageHealthcheck(): string[] {
  const hc = parseDockerfile(read("Dockerfile")).find((i) => i.op === "HEALTHCHECK")!;
  return commandOf(hc.args.replace(/^(--\S+\s+)*CMD\s+/, ""));
}

describe("deploy/k8s", () => {
  it("runs the three roles as Deployments of the image, each with probes, resources and a non-root user", () => {
    const deployments = ofKind("Deployment");
    const roles = deployments.map((d) => roleOf(d.spec.template.spec.containers[0])).sort();
    expect(roles).toEqual(["api", "reconciler", "worker"]);
    for (const d of deployments) {
      const pod = d.spec.template.spec;
      expect(d.spec.template.metadata.labels).toMatchObject(d.spec.selector.matchLabels);
      expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000 });
      // The roles drain within SHUTDOWN_TIMEOUT_MS (10 s) before the kubelet kills them.
      expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(10);
      for (const c of pod.containers) {
        const where = `${d.metadata.name}/${c.name}`;
        expect({ where, image: typeof c.image }).toEqual({ where, image: "string" });
        for (const probe of ["livenessProbe", "readinessProbe"]) expect({ where, probe, set: !!c[probe] }).toEqual({ where, probe, set: true });
        expect({ where, requests: c.resources?.requests, memoryLimit: typeof c.resources?.limits?.memory }).toEqual({
          where,
          requests: { cpu: expect.any(String), memory: expect.any(String) },
          memoryLimit: "string",
        });
        expect(c.envFrom).toEqual([{ configMapRef: { name: "simbatch" } }, { secretRef: { name: "simbatch" } }]);
        // A read-only root needs a writable /tmp (tsx's cache, HEALTH_FILE).
        if (c.securityContext?.readOnlyRootFilesystem) {
          const tmp = c.volumeMounts?.find((m: Obj) => m.mountPath === "/tmp");
          expect({ where, tmp: pod.volumes?.find((v: Obj) => v.name === tmp?.name)?.emptyDir }).toEqual({ where, tmp: {} });
        }
      }
    }
  });

  it("probes the API over HTTP (/health alive, /ready ready) and the other roles with the image's health check on HEALTH_FILE", () => {
    const deployments = ofKind("Deployment");
    const container = (role: string) => deployments.map((d) => d.spec.template.spec.containers[0]).find((c) => roleOf(c) === role)!;
    const api = container("api");
    expect(api.ports).toContainEqual({ name: "http", containerPort: 8080 });
    expect(api.livenessProbe.httpGet).toEqual({ path: "/health", port: "http" });
    expect(api.readinessProbe.httpGet).toEqual({ path: "/ready", port: "http" });
    expect(envOf(api).HEALTH_FILE).toBeUndefined();
    for (const role of ["worker", "reconciler"]) {
      const c = container(role);
      expect(envOf(c).HEALTH_FILE).toMatch(/^\/tmp\//);
      for (const probe of ["livenessProbe", "readinessProbe"]) expect(c[probe].exec.command).toEqual(imageHealthcheck());
    }
    const service = ofKind("Service").find((s) => s.metadata.name === "simbatch-api")!;
    expect(service.spec.selector).toEqual(deployments.find((d) => d.metadata.name === "simbatch-api")!.spec.template.metadata.labels);
    expect(service.spec.ports).toContainEqual(expect.objectContaining({ name: "http", targetPort: "http" }));
  });

  it("migrates with a Job of the image", () => {
    const [job] = ofKind("Job");
    const c = job!.spec.template.spec.containers[0];
    expect(c.args).toEqual(["migrate"]);
    expect(["Never", "OnFailure"]).toContain(job!.spec.template.spec.restartPolicy);
    expect(c.envFrom).toEqual([{ configMapRef: { name: "simbatch" } }, { secretRef: { name: "simbatch" } }]);
    expect(
      new Set(manifests().flatMap((m) => (["Deployment", "Job"].includes(m.kind) ? m.spec.template.spec.containers.map((x: Obj) => x.image) : []))),
    ).toEqual(new Set(["simbatch:latest"]));
    expect(ofKind("ConfigMap").map((m) => m.metadata.name)).toContain("simbatch");
    expect(ofKind("Secret").map((m) => m.metadata.name)).toEqual(["simbatch"]);
  });

  it("scales the worker Deployment on an exported metric, one pod per WORKER_CONCURRENCY slots wanted", async () => {
    const [hpa] = ofKind("HorizontalPodAutoscaler");
    const worker = ofKind("Deployment").find((d) => roleOf(d.spec.template.spec.containers[0]) === "worker")!;
    expect(hpa!.apiVersion).toBe("autoscaling/v2");
    expect(hpa!.spec.scaleTargetRef).toEqual({ apiVersion: "apps/v1", kind: "Deployment", name: worker.metadata.name });
    expect(hpa!.spec.minReplicas).toBeGreaterThanOrEqual(1);
    expect(hpa!.spec.maxReplicas).toBeGreaterThan(hpa!.spec.minReplicas);
    const [metric] = hpa!.spec.metrics;
    expect(metric.type).toBe("External");
    const name = metric.external.metric.name as string;
    expect(await exportedSeriesNames()).toContain(name);
    expect(metric.external.target).toEqual({ type: "AverageValue", averageValue: envOf(worker.spec.template.spec.containers[0]).WORKER_CONCURRENCY });
    // The adapter serves that metric under that name, from the series of the same name.
    const adapter = parse(read("deploy/k8s/prometheus-adapter/values.yaml")) as Obj;
    const rule = adapter.rules.external.find((r: Obj) => r.name.as === name);
    expect(rule.seriesQuery).toMatch(new RegExp(`^${name}\\b`));
    expect(rule.metricsQuery).toMatch(/^max\(/);
  });
});

describe("docker-compose.yml", () => {
  const compose = () => parse(read("docker-compose.yml"), { merge: true }) as { services: Record<string, Obj> };

  it("builds the image, migrates once before the roles start, and scales workers", () => {
    const { services } = compose();
    for (const role of ["api", "worker", "reconciler"]) {
      const s = services[role]!;
      expect({ role, build: s.build, command: s.command }).toEqual({ role, build: ".", command: [role] });
      expect(s.depends_on.migrate).toEqual({ condition: "service_completed_successfully" });
    }
    expect(services.migrate).toMatchObject({ build: ".", command: ["migrate"], restart: "no" });
    expect(services.migrate!.depends_on).toEqual({ postgres: { condition: "service_healthy" } });
    expect(services.worker!.deploy.replicas).toBeGreaterThanOrEqual(2);
    for (const role of ["worker", "reconciler"]) expect(services[role]!.environment.HEALTH_FILE).toMatch(/^\/tmp\//);
    expect(services.api!.environment.HEALTH_FILE).toBeUndefined();
  });

  it("requires ADMIN_TOKEN from the environment with no default, and runs Redis with noeviction and AOF", () => {
    const { services } = compose();
    // ${VAR:?message} fails `docker compose up` when VAR is unset or empty; ${VAR:-x} or a literal would be a default.
    expect(services.api!.environment.ADMIN_TOKEN).toMatch(/^\$\{ADMIN_TOKEN:\?[^}]+\}$/);
    const redis = (services.redis!.command as string[]).join(" ");
    expect(redis).toMatch(/--maxmemory-policy noeviction/);
    expect(redis).toMatch(/--appendonly yes/);
    expect(services.redis!.volumes).toEqual([expect.stringMatching(/:\/data$/)]);
  });
});
