/**
 * The CPU image without a container engine (issue #20): deploy/docker/Dockerfile's steps, parsed from the file, are
 * run for real on a clean copy of the build context (the files git tracks, less what Dockerfile.dockerignore leaves
 * out): each stage gets its own root directory, COPY copies (from the context or an earlier stage), RUN runs its
 * command there (npm ci, npm run build, the bins put on PATH). Then, in a network namespace of their own (the
 * container's network: the compose file's fixed ports and the `coordinator` host name), the image's CMD and the
 * compose file's coordinator and worker command lines are started from the built root, and the HEALTHCHECK command
 * is run against both; the run trains to its end.
 *
 * What differs from a container, and only that: absolute paths of the image (/app, /runs, /usr/local/bin) are
 * rewritten to the stage's root, `chown node:node` takes this machine's user (the base image's `node` user does
 * not exist here) and USER is not switched; the base image is this machine's Node, not node:20-bookworm-slim.
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { copies, dockerStages, hasPyYaml, inContext, yamlDocs } from "./helpers/dockerfile.js";
import { netnsUnavailable } from "./helpers/netns.js";
import { ROOT, smallParams, tempDir, waitFor } from "./helpers/runs.js";

const DOCKERFILE = join(ROOT, "deploy/docker/Dockerfile");
const skip = netnsUnavailable() ?? (hasPyYaml ? null : "python3 has no PyYAML to read deploy/compose.yaml");
if (skip) console.warn(`container rehearsal skipped: ${skip}`);

/** Absolute paths inside the image → the same paths under `root`. */
const IMAGE_PATHS = ["/app", "/runs", "/usr/local/bin"];
function rewrite(text: string, root: string): string {
  let out = text;
  for (const p of IMAGE_PATHS) out = out.replace(new RegExp(`(?<![\\w./-])${p.replace(/\//g, "\\/")}(?=[/\\s"'\`$]|$)`, "g"), join(root, p));
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  return out.replace(/chown node:node/g, `chown ${uid}:${gid}`);
}

/** The exec form ["a", "b"] of CMD / HEALTHCHECK CMD as an argument list. */
const execForm = (json: string): string[] => JSON.parse(json) as string[];

describe.skipIf(skip !== null)("deploy/docker/Dockerfile rehearsed without a container engine", () => {
  const work = tempDir("snn-rehearsal-");
  const ns = `snn-rehearsal-${process.pid}`;
  afterAll(() => {
    spawnSync("ip", ["netns", "delete", ns]);
    rmSync(join("/etc/netns", ns), { recursive: true, force: true });
  });

  it("builds stage by stage from the file's own steps; CMD, the compose commands and HEALTHCHECK run from the result", async () => {
    // The build context: a clean copy of what git tracks, filtered by the Dockerfile's .dockerignore.
    const context = join(work, "context");
    const tracked = execFileSync("git", ["ls-files"], { cwd: ROOT, encoding: "utf8" }).split("\n").filter(Boolean);
    for (const f of tracked.filter((f) => existsSync(join(ROOT, f)) && inContext(`${DOCKERFILE}.dockerignore`, f))) {
      mkdirSync(dirname(join(context, f)), { recursive: true });
      cpSync(join(ROOT, f), join(context, f));
    }
    expect(existsSync(join(context, "node_modules"))).toBe(false);

    const stages = dockerStages(DOCKERFILE);
    const roots = new Map<string, string>();
    let healthcheck: string[] = [];
    let cmd: string[] = [];
    for (const [i, stage] of stages.entries()) {
      const root = join(work, stage.name ?? `stage-${i}`);
      mkdirSync(join(root, "usr/local/bin"), { recursive: true });
      if (stage.name) roots.set(stage.name, root);
      let workdir = "/";
      const env: Record<string, string> = {};
      const copyInstructions = copies(stage);
      let copyIndex = 0;
      for (const step of stage.steps) {
        const at = join(root, workdir);
        if (step.op === "WORKDIR") {
          workdir = step.args;
          mkdirSync(join(root, workdir), { recursive: true });
        } else if (step.op === "ENV") {
          const [k, v] = step.args.split("=");
          env[k] = v;
        } else if (step.op === "COPY") {
          const c = copyInstructions[copyIndex++];
          const base = c.from ? roots.get(c.from)! : context;
          const dest = c.dest.startsWith("/") ? join(root, c.dest) : join(at, c.dest);
          for (const source of c.sources) {
            const from = join(base, source);
            const into = c.sources.length > 1 || c.dest.endsWith("/") ? join(dest, source.split("/").at(-1)!) : dest;
            mkdirSync(dirname(into), { recursive: true });
            cpSync(from, into, { recursive: true });
          }
        } else if (step.op === "RUN") {
          const r = spawnSync("sh", ["-c", rewrite(step.args, root)], { cwd: at, env: { ...process.env, ...env, PATH: `${join(root, "usr/local/bin")}:${process.env.PATH}` }, encoding: "utf8" });
          expect(r.status, `RUN ${step.args}\n${r.stdout}\n${r.stderr}`).toBe(0);
        } else if (step.op === "HEALTHCHECK") {
          healthcheck = execForm(step.args.slice(step.args.indexOf("CMD") + 3).trim());
        } else if (step.op === "CMD") {
          cmd = execForm(step.args);
        }
      }
    }
    const image = join(work, `stage-${stages.length - 1}`);
    const PATH = `${join(image, "usr/local/bin")}:${process.env.PATH}`;
    // Only production dependencies in the image, and the compiled program.
    expect(existsSync(join(image, "app/dist/cli/snn-coord.js"))).toBe(true);
    expect(existsSync(join(image, "app/node_modules/vitest"))).toBe(false);

    // CMD: the image's default command.
    const help = spawnSync(cmd[0], cmd.slice(1).map((a) => rewrite(a, image)), { env: { ...process.env, PATH }, encoding: "utf8" });
    expect(help.status, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/snn-coord PARAMS/);

    // The compose file's coordinator and worker, in a network namespace of their own, as containers on one network.
    execFileSync("ip", ["netns", "add", ns]);
    execFileSync("ip", ["-n", ns, "link", "set", "lo", "up"]);
    mkdirSync(join("/etc/netns", ns), { recursive: true });
    writeFileSync(join("/etc/netns", ns, "hosts"), "127.0.0.1 localhost coordinator\n");
    const compose = yamlDocs(join(ROOT, "deploy/compose.yaml"))[0] as { services: Record<string, { command: string[]; environment?: Record<string, string> }> };
    const params = join(image, "app/parameters/rehearsal.toml");
    // Long enough (some seconds) for the health checks to find both processes serving.
    writeFileSync(params, readFileSync(smallParams(work, { epochs: 900 }), "utf8"));
    const inNs = (command: string[], env: Record<string, string>) => {
      const child = spawn("ip", ["netns", "exec", ns, ...command], { env: { ...process.env, ...env, PATH }, stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      child.stdout.on("data", (d) => (out += d));
      child.stderr.on("data", (d) => (out += d));
      return { output: () => out, exit: new Promise<number | null>((r) => child.on("exit", r)) };
    };
    // Compose's $$ is a literal $; the environment's defaults are written as compose would fill them.
    const coordCommand = compose.services.coordinator.command.map((a) => rewrite(a.replace(/\$\$/g, "$"), image));
    const coordinator = inNs(coordCommand, { SNN_PARAMS: params, SNN_RUN: join(image, "runs/rehearsal"), SNN_MIN_WORKERS: "1" });
    const worker = inNs(compose.services.worker.command, {});
    const health = (ports: string) =>
      spawnSync("ip", ["netns", "exec", ns, ...healthcheck.map((a) => rewrite(a, image))], { env: { ...process.env, PATH, HEALTHCHECK_PORTS: ports }, encoding: "utf8" });
    await waitFor(() => /Epoch \d+\//.test(coordinator.output()), 60_000, "training in the rehearsal", coordinator.output);
    // HEALTHCHECK as the image runs it: healthy on the coordinator's and the worker's ports, not on a closed one.
    expect(health("9464").status).toBe(0);
    const workerHealth = health("9465");
    expect(workerHealth.status, `${workerHealth.stderr}\n${worker.output()}`).toBe(0);
    expect(health("9999").status).toBe(1);
    expect(await coordinator.exit, coordinator.output()).toBe(0);
    expect(await worker.exit, worker.output()).toBe(0);
    expect(existsSync(join(image, "runs/rehearsal/checkpoints/checkpoint_latest.safetensors"))).toBe(true);
  }, 600_000);
});
