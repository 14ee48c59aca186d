/**
 * Enough of a Dockerfile interpreter to run this repository's Dockerfile
 * without Docker (tests/deploy/dockerfile.int.test.ts): the instructions are
 * parsed, each stage's filesystem is a directory, COPY copies from the build
 * context (a clean copy of the tree through .dockerignore) or from an earlier
 * stage, RUN runs in the stage's WORKDIR with its ENV. The base image stands
 * for the host's node and npm. Any instruction or flag it does not know fails
 * the test, so a Dockerfile change it cannot follow is noticed.
 */
import { execFileSync, execSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";

export interface Instruction {
  op: string;
  args: string;
  line: number;
}

/** Lines joined across `\` continuations; comments, blank lines and parser directives dropped. */
export function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  const lines = text.split("\n");
  let buf = "";
  let start = 0;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    const trimmed = raw.trim();
    if (buf === "" && (trimmed === "" || trimmed.startsWith("#"))) continue;
    if (buf !== "" && trimmed.startsWith("#")) continue; // comment inside a continued instruction
    if (buf === "") start = i + 1;
    if (trimmed.endsWith("\\")) {
      buf += `${trimmed.slice(0, -1)} `;
      continue;
    }
    buf += trimmed;
    const m = /^(\S+)\s*(.*)$/s.exec(buf)!;
    out.push({ op: m[1]!.toUpperCase(), args: m[2]!.trim(), line: start });
    buf = "";
  }
  return out;
}

/** `--name=value` flags in front of an instruction's arguments. */
export function splitFlags(args: string): { flags: Record<string, string>; rest: string } {
  const flags: Record<string, string> = {};
  let rest = args;
  for (;;) {
    const m = /^--([a-z-]+)(?:=(\S+))?\s+/.exec(rest);
    if (!m) return { flags, rest };
    flags[m[1]!] = m[2] ?? "true";
    rest = rest.slice(m[0].length);
  }
}

/** Exec form (`["a", "b"]`) or shell form (`sh -c "..."`) of RUN, CMD, ENTRYPOINT and HEALTHCHECK CMD. */
export function commandOf(args: string): string[] {
  if (args.startsWith("[")) return JSON.parse(args) as string[];
  return ["/bin/sh", "-c", args];
}

/** ENV `k=v k2="v 2"` or the legacy `ENV k v`. */
export function parseEnvArgs(args: string): Record<string, string> {
  const env: Record<string, string> = {};
  if (!/^[A-Za-z_][A-Za-z0-9_]*=/.test(args)) {
    const m = /^(\S+)\s+(.*)$/.exec(args)!;
    env[m[1]!] = m[2]!;
    return env;
  }
  for (const m of args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|\S*)/g)) {
    env[m[1]!] = m[2]!.startsWith('"') ? (JSON.parse(m[2]!) as string) : m[2]!;
  }
  return env;
}

/** One .dockerignore pattern as a regular expression over slash-separated paths. */
function patternRegex(pattern: string): RegExp {
  const p = pattern.replace(/^\/+/, "").replace(/\/+$/, "");
  let re = "";
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (c === "*" && p[i + 1] === "*") {
      // `**/` matches any number of directories, a trailing `**` anything.
      if (p[i + 2] === "/") {
        re += "(?:.*/)?";
        i += 2;
      } else {
        re += ".*";
        i += 1;
      }
    } else if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else re += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

/**
 * The .dockerignore rules as a predicate: a path is excluded when the last rule
 * that matches it or one of its parent directories is not a `!` exception.
 */
export function dockerignore(text: string): (file: string) => boolean {
  const rules = text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"))
    .map((l) => (l.startsWith("!") ? { negate: true, re: patternRegex(l.slice(1)) } : { negate: false, re: patternRegex(l) }));
  return (file) => {
    const parts = file.split("/");
    const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join("/"));
    let excluded = false;
    for (const r of rules) if (prefixes.some((p) => r.re.test(p))) excluded = !r.negate;
    return excluded;
  };
}

/** The build context: tracked and untracked-but-not-ignored files of the work tree, through .dockerignore. */
export function cleanContext(repo: string, dest: string): string[] {
  const listed = execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard", "-z"], { cwd: repo, encoding: "utf8" })
    .split("\0")
    .filter(Boolean);
  const ignore = dockerignore(existsSync(path.join(repo, ".dockerignore")) ? readFileSync(path.join(repo, ".dockerignore"), "utf8") : "");
  const files = listed.filter((f) => !ignore(f) && existsSync(path.join(repo, f)));
  for (const f of files) {
    mkdirSync(path.dirname(path.join(dest, f)), { recursive: true });
    cpSync(path.join(repo, f), path.join(dest, f), { preserveTimestamps: true });
  }
  return files;
}

export interface Stage {
  name: string;
  /** The stage's filesystem root: container path /x is `${root}/x`. */
  root: string;
  workdir: string;
  env: Record<string, string>;
  user: string | null;
  cmd: string[] | null;
  entrypoint: string[] | null;
  healthcheck: string[] | null;
  expose: string[];
}

export interface BuildOptions {
  context: string;
  /** Parent directory of the stages' filesystems. */
  workspace: string;
  /** Environment of RUN commands besides the stage's ENV (PATH to node, npm cache settings). */
  runEnv: Record<string, string>;
  log?: (line: string) => void;
}

/** A container path in a stage's filesystem. */
export const hostPath = (stage: Stage, p: string): string => path.join(stage.root, path.isAbsolute(p) ? p : path.join(stage.workdir, p));

/** Runs the Dockerfile's stages; returns them, the last one being the image. */
export function build(instructions: Instruction[], opts: BuildOptions): Stage[] {
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  let stage: Stage | null = null;
  const subst = (s: string) => s.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_, a, b) => args[a ?? b] ?? "");
  for (const ins of instructions) {
    const where = `Dockerfile:${ins.line} ${ins.op}`;
    if (ins.op === "ARG") {
      const [k, v] = ins.args.split("=", 2);
      args[k!] = v ?? "";
      continue;
    }
    if (ins.op === "FROM") {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(subst(ins.args));
      if (!m) throw new Error(`${where}: cannot read ${ins.args}`);
      const name = m[2] ?? String(stages.length);
      const from = stages.find((s) => s.name === m[1]);
      const root = path.join(opts.workspace, `stage-${name}`);
      mkdirSync(root, { recursive: true });
      if (from) cpSync(from.root, root, { recursive: true });
      stage = { name, root, workdir: "/", env: { ...(from?.env ?? {}) }, user: null, cmd: null, entrypoint: null, healthcheck: null, expose: [] };
      stages.push(stage);
      continue;
    }
    if (!stage) throw new Error(`${where}: before FROM`);
    const s: Stage = stage;
    switch (ins.op) {
      case "WORKDIR":
        s.workdir = path.posix.resolve(s.workdir, ins.args);
        mkdirSync(hostPath(s, s.workdir), { recursive: true });
        break;
      case "ENV":
        Object.assign(s.env, parseEnvArgs(ins.args));
        break;
      case "COPY": {
        const { flags, rest } = splitFlags(ins.args);
        for (const f of Object.keys(flags)) if (f !== "from" && f !== "chown" && f !== "chmod") throw new Error(`${where}: unknown flag --${f}`);
        const parts = rest.startsWith("[") ? (JSON.parse(rest) as string[]) : rest.split(/\s+/);
        const dest = parts.pop()!;
        const from = flags.from === undefined ? null : stages.find((x) => x.name === flags.from);
        if (flags.from !== undefined && !from) throw new Error(`${where}: no stage ${flags.from}`);
        const destDir = dest.endsWith("/") || parts.length > 1;
        for (const src of parts) {
          const source = from ? path.join(from.root, src) : path.join(opts.context, src);
          if (!existsSync(source)) throw new Error(`${where}: ${src} is not in the ${from ? `stage ${from.name}` : "build context"}`);
          const target = hostPath(s, dest);
          if (statSync(source).isDirectory()) {
            // A directory's contents go into the destination; node_modules trees are hard-linked (fast, same content).
            mkdirSync(target, { recursive: true });
            execFileSync("cp", ["-al", "--remove-destination", `${source}/.`, target]);
          } else {
            const file = destDir ? path.join(target, path.basename(src)) : target;
            mkdirSync(path.dirname(file), { recursive: true });
            cpSync(source, file);
          }
        }
        break;
      }
      case "RUN": {
        const cmd = commandOf(ins.args);
        opts.log?.(`${where}: ${ins.args}`);
        const cwd = hostPath(s, s.workdir);
        if (cmd[0] === "/bin/sh") execSync(cmd[2]!, { cwd, env: { ...opts.runEnv, ...s.env }, stdio: "pipe", shell: "/bin/sh" });
        else execFileSync(cmd[0]!, cmd.slice(1), { cwd, env: { ...opts.runEnv, ...s.env }, stdio: "pipe" });
        break;
      }
      case "USER":
        s.user = ins.args;
        break;
      case "EXPOSE":
        s.expose.push(...ins.args.split(/\s+/));
        break;
      case "CMD":
        s.cmd = commandOf(ins.args);
        break;
      case "ENTRYPOINT":
        s.entrypoint = commandOf(ins.args);
        break;
      case "HEALTHCHECK": {
        const { rest } = splitFlags(ins.args);
        const m = /^CMD\s+(.*)$/s.exec(rest);
        if (!m) throw new Error(`${where}: only HEALTHCHECK [flags] CMD ... is understood`);
        s.healthcheck = commandOf(m[1]!);
        break;
      }
      case "LABEL":
        break;
      default:
        throw new Error(`${where}: not understood by tests/support/dockerfile.ts`);
    }
  }
  return stages;
}
