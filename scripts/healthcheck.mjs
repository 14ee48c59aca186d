// Container health check: the image's HEALTHCHECK and Kubernetes exec probes.
// Plain JavaScript so it starts fast (no TypeScript loader).
//   HEALTH_FILE set (worker, reconciler): healthy while the role rewrote that
//     file within HEALTH_MAX_AGE_MS (default 30 s; the roles write it every 5 s).
//   HEALTH_FILE unset (api): GET http://127.0.0.1:$PORT/health answers 200 within 3 s.
// Exit 0 healthy, 1 not.
import { statSync } from "node:fs";

const file = process.env.HEALTH_FILE;
if (file) {
  const maxAgeMs = Number(process.env.HEALTH_MAX_AGE_MS || 30_000);
  let age = Number.POSITIVE_INFINITY;
  try {
    age = Date.now() - statSync(file).mtimeMs;
  } catch {
    // missing: not started yet, or stopped
  }
  process.exit(age <= maxAgeMs ? 0 : 1);
} else {
  const port = process.env.PORT || "8080";
  fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(3_000) }).then(
    (res) => process.exit(res.status === 200 ? 0 : 1),
    () => process.exit(1),
  );
}
