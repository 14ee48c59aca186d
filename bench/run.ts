/** `npm run bench`: every benchmark in turn, each in its own process. */
import { spawnSync } from "node:child_process";
import path from "node:path";

const BENCHES = ["engine.bench.ts", "control-plane.bench.ts"];
let failed = false;
for (const file of BENCHES) {
  console.log(`\n== ${file}`);
  const res = spawnSync(process.execPath, ["--import", "tsx", path.join(__dirname, file)], { stdio: "inherit" });
  if (res.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
