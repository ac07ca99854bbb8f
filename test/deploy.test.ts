/**
 * deploy/: the Dockerfiles, the compose file, the Kubernetes manifests and the Slurm script agree with the program.
 * Every command line that starts snn-coord or snn-worker is run (with stand-ins for the programs, srun and scontrol)
 * and its arguments are parsed by the real command-line definitions, so a renamed or removed flag fails here rather
 * than on a cluster. Last, a multi-host rehearsal: a coordinator bound to 127.0.0.2 and two external workers.
 */
import { ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { createServer as createTcpServer } from "node:net";
import { basename, dirname, join, resolve } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { coordinatorCli } from "../src/cli/coord-options.js";
import { workerCli } from "../src/cli/worker-options.js";
import { DEFAULT_METRICS_PORT } from "../src/report/coordinator-reports.js";
import { loadConfig } from "../src/io/parameters-file.js";
import { COORD, ensureBuilt, freePort, ROOT, smallParams, start, tempDir, WORKER } from "./helpers/runs.js";
import { copies, dockerStages, hasPyYaml, inContext, type Stage, yamlDocs } from "./helpers/dockerfile.js";

const DEPLOY = join(ROOT, "deploy");
const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { bin: Record<string, string>; scripts: Record<string, string> };
const lock = JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8")) as { packages: Record<string, { version: string }> };

// ---- helpers ------------------------------------------------------------------------------------------------------

type Args = Record<string, unknown>;

/** Parses argv with the program's own yargs definition; unknown flags, bad values and conflicts throw. */
async function parseArgs(cli: typeof coordinatorCli | typeof workerCli, argv: string[]): Promise<Args> {
  return (await cli(argv)
    .exitProcess(false)
    .fail((msg: string, err?: Error) => {
      throw err ?? new Error(msg);
    })
    .parseAsync()) as Args;
}
const coordArgs = (argv: string[]) => parseArgs(coordinatorCli, argv);
const workerArgs = (argv: string[]) => parseArgs(workerCli, argv);


function which(binary: string): string | undefined {
  const r = spawnSync("sh", ["-c", `command -v ${binary}`], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** Compose's interpolation of ${VAR:-default}, ${VAR-default}, ${VAR}, $VAR and $$ in every string of a value. */
function interpolate(value: unknown, env: Record<string, string | undefined> = {}): any {
  if (typeof value === "string")
    return value.replace(/\$\$|\$\{(\w+)(:?-([^}]*))?\}|\$(\w+)/g, (m, braced, hasDefault, fallback, bare) => {
      if (m === "$$") return "$";
      const v = env[braced ?? bare];
      if (hasDefault?.startsWith(":")) return v ? v : fallback;
      return v ?? (hasDefault ? fallback : "");
    });
  if (Array.isArray(value)) return value.map((v) => interpolate(v, env));
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, env)]));
  return value;
}

/** "tcp://host:port" → [host, port]. */
function endpoint(url: unknown): [string, number] {
  const m = /^tcp:\/\/(.+):(\d+)$/.exec(String(url));
  if (!m) throw new Error(`not a tcp endpoint: ${url}`);
  return [m[1], Number(m[2])];
}

/**
 * Stand-ins on PATH: snn-coord and snn-worker (as in the images), srun and scontrol (as on a Slurm node), and a fake
 * checkout whose dist/*.js record how they were called. Each appends {bin, argv, localId} to $STUB_LOG. The fake
 * coordinator stays up until SIGTERM (then exits 130, as the real one after a checkpoint) when STUB_COORD=wait.
 */
let STUBS = "";
let FAKE_HOME = "";
function writeStubs(): void {
  const dir = tempDir("snn-deploy-stubs-");
  STUBS = join(dir, "bin");
  FAKE_HOME = join(dir, "checkout");
  const recorder = (bin: string) => `#!/usr/bin/env node
require("fs").appendFileSync(process.env.STUB_LOG, JSON.stringify({ bin: ${JSON.stringify(bin)}, argv: process.argv.slice(2), localId: process.env.SLURM_LOCALID, procId: process.env.SLURM_PROCID }) + "\\n");
if (${JSON.stringify(bin)} === "snn-coord" && process.env.STUB_COORD === "wait" && !process.argv.includes("--keygen")) {
  process.on("SIGTERM", () => process.exit(130));
  setInterval(() => {}, 1000);
}
`;
  // srun: only --option or --option=value forms (so that options and command are told apart), tasks run here with
  // SLURM_LOCALID set, SIGTERM forwarded to them as srun does.
  const srun = `#!/usr/bin/env node
const { appendFileSync } = require("fs");
const { spawn } = require("child_process");
const args = process.argv.slice(2);
const opts = [];
while (args.length && args[0].startsWith("-")) {
  const o = args.shift();
  if (!/^--[a-z-]+(=.*)?$/.test(o)) { console.error("stub srun: use --option=value, not " + o); process.exit(9); }
  opts.push(o);
}
appendFileSync(process.env.STUB_LOG, JSON.stringify({ bin: "srun", argv: opts, command: args[0] }) + "\\n");
const num = (name) => Number((opts.find((o) => o.startsWith(name + "=")) || name + "=1").split("=")[1]);
const children = [];
for (let n = 0; n < num("--nodes"); n++)
  for (let l = 0; l < num("--ntasks-per-node"); l++)
    children.push(spawn(args[0], args.slice(1), { stdio: "inherit", env: { ...process.env, SLURM_NODEID: String(n), SLURM_LOCALID: String(l), SLURM_PROCID: String(n * num("--ntasks-per-node") + l) } }));
process.on("SIGTERM", () => children.forEach((c) => c.kill("SIGTERM")));
let rc = 0, left = children.length;
children.forEach((c) => c.on("exit", (code) => { rc = Math.max(rc, code ?? 1); if (--left === 0) process.exit(rc); }));
`;
  const scontrol = `#!/usr/bin/env node
const args = process.argv.slice(2);
require("fs").appendFileSync(process.env.STUB_LOG, JSON.stringify({ bin: "scontrol", argv: args }) + "\\n");
if (args[0] === "show" && args[1] === "hostnames") console.log(process.env.STUB_NODES.split(",").join("\\n"));
`;
  const files: Record<string, string> = {
    // The stand-ins are CommonJS whatever package.json a temporary directory might sit under.
    [join(dir, "package.json")]: '{ "type": "commonjs" }\n',
    [join(STUBS, "snn-coord")]: recorder("snn-coord"),
    [join(STUBS, "snn-worker")]: recorder("snn-worker"),
    [join(STUBS, "srun")]: srun,
    [join(STUBS, "scontrol")]: scontrol,
    [join(FAKE_HOME, pkg.bin["snn-coord"])]: recorder("snn-coord"),
    [join(FAKE_HOME, pkg.bin["snn-worker"])]: recorder("snn-worker"),
  };
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, text);
    chmodSync(file, 0o755);
  }
}

interface Call {
  bin: string;
  argv: string[];
  localId?: string;
  procId?: string;
  command?: string;
}

/** The calls of the coordinator itself (not its --keygen step). */
const coordinatorCalls = (calls: Call[]) => calls.filter((x) => x.bin === "snn-coord" && !x.argv.includes("--keygen"));

/** Runs a command with the stand-ins first on PATH; returns its exit status, output and the recorded calls. */
function runWithStubs(cmd: string, args: string[], env: Record<string, string>): { status: number | null; output: string; calls: Call[] } {
  const log = join(tempDir("snn-deploy-log-"), "calls.jsonl");
  writeFileSync(log, "");
  const base = { PATH: `${STUBS}:${process.env.PATH}`, HOME: process.env.HOME ?? "/tmp", STUB_LOG: log };
  const r = spawnSync(cmd, args, { env: { ...base, ...env }, encoding: "utf8", timeout: 60_000 });
  return { status: r.status, output: `${r.stdout}${r.stderr}`, calls: readCalls(log) };
}

function readCalls(log: string): Call[] {
  return readFileSync(log, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Call);
}

/** The states a run directory can be in when a coordinator (re)starts, and the flag each must lead to. */
function runDirStates(root: string): { name: string; dir: string; expected: string[] }[] {
  const fresh = join(root, "fresh");
  const started = join(root, "started");
  mkdirSync(join(started, "checkpoints"), { recursive: true });
  writeFileSync(join(started, "metadata.json"), "{}");
  const checkpointed = join(root, "checkpointed");
  mkdirSync(join(checkpointed, "checkpoints"), { recursive: true });
  writeFileSync(join(checkpointed, "checkpoints/checkpoint_latest.safetensors"), "");
  return [
    { name: "a new run", dir: fresh, expected: [] },
    { name: "a run without a checkpoint", dir: started, expected: ["--force"] },
    { name: "a checkpointed run", dir: checkpointed, expected: ["--resume", "auto"] },
  ];
}

/** The flags that tell a fresh start, a restart and a resume apart. */
function resumeFlags(argv: string[]): string[] {
  const i = argv.indexOf("--resume");
  return [...(argv.includes("--force") ? ["--force"] : []), ...(i >= 0 ? argv.slice(i, i + 2) : [])];
}

const workerDefaults = await workerArgs(["--connect", "tcp://h:1"]);

beforeAll(() => {
  writeStubs();
  ensureBuilt();
});

// ---- Dockerfiles ------------------------------------------------------------------------------------------------

describe.each(["Dockerfile", "Dockerfile.gpu"])("deploy/docker/%s", (file) => {
  const path = join(DEPLOY, "docker", file);
  const stages = dockerStages(path);
  const final = stages.at(-1)!;
  const build = stages.find((s) => s.name === "build")!;
  const runs = (stage: Stage) => stage.steps.filter((s) => s.op === "RUN").map((s) => s.args);

  it("builds with npm ci + npm run build and ships only production dependencies, dist/ and parameters/", () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(build, "a stage named build").toBeDefined();
    expect(runs(build).some((r) => /\bnpm ci\b/.test(r) && !/--omit=dev/.test(r))).toBe(true);
    expect(runs(build).some((r) => /\bnpm run build\b/.test(r))).toBe(true);
    expect(pkg.scripts.build).toBeDefined();
    // Production dependencies only: npm ci --omit=dev in the final stage, or in the stage it copies node_modules from.
    const modulesFrom = copies(final).find((c) => c.sources.some((s) => s.endsWith("node_modules")))?.from;
    const depsStage = modulesFrom ? stages.find((s) => s.name === modulesFrom)! : final;
    expect(runs(depsStage).some((r) => /\bnpm ci --omit=dev\b/.test(r))).toBe(true);
    expect(runs(final).some((r) => /\bnpm ci\b(?!.*--omit=dev)/.test(r)), "no dev dependencies in the runtime").toBe(false);
    const finalCopies = copies(final);
    expect(finalCopies).toContainEqual({ from: "build", sources: ["/app/dist"], dest: "./dist" });
    expect(finalCopies.some((c) => !c.from && c.sources.includes("parameters"))).toBe(true);
    expect(final.steps.some((s) => s.op === "WORKDIR" && s.args === "/app")).toBe(true);
    expect(final.steps.find((s) => s.op === "ENTRYPOINT"), "no ENTRYPOINT: compose and k8s give the command").toBeUndefined();
  });

  it("copies only paths that exist and that its .dockerignore lets into the context", () => {
    const ignore = `${path}.dockerignore`;
    expect(existsSync(ignore)).toBe(true);
    for (const stage of stages)
      for (const c of copies(stage).filter((c) => !c.from))
        for (const source of c.sources) {
          expect(existsSync(join(ROOT, source)), `${file}: COPY ${source}`).toBe(true);
          expect(inContext(ignore, source), `${file}: COPY ${source} is excluded by ${basename(ignore)}`).toBe(true);
        }
    // The build stage has every repository file that `npm run build` names (e.g. scripts/*.mjs, tsconfig.json) ...
    const copied = copies(build).flatMap((c) => (c.from ? [] : c.sources));
    const named = pkg.scripts.build.split(/[\s&|;]+/).filter((w) => /[./]/.test(w) && existsSync(join(ROOT, w)) && statSync(join(ROOT, w)).isFile());
    expect(named.length).toBeGreaterThan(0);
    for (const f of named) expect(copied.some((s) => f === s || f.startsWith(`${s}/`)), `build stage lacks ${f}`).toBe(true);
    // ... and the sources tsc compiles.
    expect(copied).toContain("src");
    // The dependencies are installed from the lock file.
    expect(copies(build).some((c) => c.sources.includes("package-lock.json"))).toBe(true);
  });

  it("puts the package's bins on PATH from dist/, which npm run build produces", () => {
    // The final stage links every package.json bin; each must be a file that the build emits.
    expect(runs(final).some((r) => r.includes('require("./package.json").bin') && r.includes("/usr/local/bin/"))).toBe(true);
    for (const [name, file] of Object.entries(pkg.bin)) {
      expect(file, name).toMatch(/^dist\//);
      expect(existsSync(join(ROOT, file)), `${name} → ${file} (npx tsc -p tsconfig.json builds it)`).toBe(true);
      expect(readFileSync(join(ROOT, file), "utf8").startsWith("#!/usr/bin/env node"), `${file} has a shebang`).toBe(true);
    }
    expect(pkg.bin["snn-coord"]).toBe("dist/cli/snn-coord.js");
    expect(pkg.bin["snn-worker"]).toBe("dist/cli/snn-worker.js");
    const cmd = JSON.parse(final.steps.find((s) => s.op === "CMD")!.args) as string[];
    expect(cmd).toEqual(["snn-coord", "--help"]);
  });

  it("runs as a non-root user and checks its health on the metrics port", () => {
    const user = final.steps.filter((s) => s.op === "USER").at(-1)?.args;
    expect(user).toBeDefined();
    expect(["root", "0"]).not.toContain(user!.split(":")[0]);
    const health = final.steps.find((s) => s.op === "HEALTHCHECK")!.args;
    expect(health).toMatch(/CMD \["node", "\/app\/deploy\/docker\/healthcheck\.mjs"\]/);
    expect(copies(final).some((c) => c.sources.includes("deploy/docker/healthcheck.mjs") && c.dest === "./deploy/docker/healthcheck.mjs")).toBe(true);
  });
});

describe("deploy/docker/Dockerfile.gpu", () => {
  it("uses a CUDA 11.8 + cuDNN 8 Ubuntu 22.04 base with Node 20 and the tfjs-node-gpu matching @tensorflow/tfjs", () => {
    const path = join(DEPLOY, "docker/Dockerfile.gpu");
    const stages = dockerStages(path);
    const text = readFileSync(path, "utf8");
    expect(text).toMatch(/^ARG CUDA_IMAGE=nvidia\/cuda:11\.8\.\d+-cudnn8-runtime-ubuntu22\.04$/m);
    expect(text).toMatch(/^ARG NODE_VERSION=20$/m);
    // tfjs-node-gpu pins @tensorflow/tfjs to its own version: the two must be the same release.
    const tfjs = lock.packages["node_modules/@tensorflow/tfjs"].version;
    expect(tfjs).toBe("4.22.0");
    expect(text).toContain(`npm install --omit=dev --no-save @tensorflow/tfjs-node-gpu@${tfjs}`);
    // The runtime is the CUDA base with Node copied in from the official image.
    expect(stages.at(-1)!.from).toBe("cuda-node");
    const cudaNode = stages.find((s) => s.name === "cuda-node")!;
    expect(cudaNode.from).toBe("${CUDA_IMAGE}");
    expect(copies(cudaNode).map((c) => c.from)).toEqual(["node", "node"]);
    expect(stages.find((s) => s.name === "node")!.from).toBe("node:${NODE_VERSION}-bookworm-slim");
  });
});

describe("deploy/docker/healthcheck.mjs", () => {
  const check = (ports: string) =>
    new Promise<number | null>((done) => {
      const child = spawn(process.execPath, [join(DEPLOY, "docker/healthcheck.mjs")], { env: { ...process.env, HEALTHCHECK_PORTS: ports }, stdio: "ignore" });
      child.on("exit", (code) => done(code));
    });

  it("exits 0 when one of the ports serves /metrics, 1 otherwise", async () => {
    const server = createHttpServer((req, res) => {
      res.writeHead(req.url === "/metrics" ? 200 : 404);
      res.end("snn_build_info 1\n");
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    const closed = await new Promise<number>((r) => {
      const s = createTcpServer().listen(0, "127.0.0.1", () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => r(p));
      });
    });
    try {
      expect(await check(`${closed},${port}`)).toBe(0);
      expect(await check(String(closed))).toBe(1);
    } finally {
      server.close();
    }
  });
});

// ---- docker compose -----------------------------------------------------------------------------------------------

describe.skipIf(!hasPyYaml)("deploy/compose.yaml", () => {
  const compose = () => interpolate(yamlDocs(join(DEPLOY, "compose.yaml"))[0]) as any;

  it("has a coordinator, scalable workers, Prometheus, Grafana and a named volume for /runs", () => {
    const c = compose();
    expect(Object.keys(c.services).sort()).toEqual(["coordinator", "grafana", "prometheus", "worker"]);
    const worker = c.services.worker;
    // `--scale worker=N` needs replicas that differ in nothing fixed.
    expect(worker.container_name).toBeUndefined();
    expect(worker.ports).toBeUndefined();
    const runsMount = (c.services.coordinator.volumes as string[]).find((v) => v.split(":")[1] === "/runs")!;
    expect(runsMount).toBeDefined();
    expect(Object.keys(c.volumes)).toContain(runsMount.split(":")[0]);
    for (const name of ["coordinator", "worker"]) {
      const s = c.services[name];
      expect(s.restart).toBe("on-failure");
      expect(s.image).toBe("snn-train:0.1.0");
      expect(existsSync(join(DEPLOY, s.build.context, s.build.dockerfile)), `${name} build`).toBe(true);
      expect(resolve(DEPLOY, s.build.context)).toBe(ROOT);
    }
    // Bind mounts name files and folders of the repository (paths relative to deploy/).
    for (const [name, s] of Object.entries<any>(c.services))
      for (const v of (s.volumes ?? []) as string[]) {
        const source = v.split(":")[0];
        if (source.startsWith(".")) expect(existsSync(join(DEPLOY, source)), `${name}: ${source}`).toBe(true);
      }
  });

  it("the coordinator's command starts, restarts or resumes the run with flags snn-coord accepts", async () => {
    const c = compose();
    const svc = c.services.coordinator;
    expect(svc.command.slice(0, 2)).toEqual(["sh", "-c"]);
    const env = svc.environment as Record<string, string>;
    expect(env.SNN_RUN).toBe("/runs/quickstart");
    expect(env.SNN_PARAMS).toMatch(/^\/app\/parameters\//);
    expect(existsSync(join(ROOT, "parameters", basename(env.SNN_PARAMS)))).toBe(true);
    for (const state of runDirStates(tempDir())) {
      const r = runWithStubs("sh", ["-c", svc.command[2]], { ...env, SNN_RUN: state.dir });
      expect(r.status, r.output).toBe(0);
      expect(r.calls.map((x) => x.bin)).toEqual(["snn-coord"]);
      const argv = r.calls[0].argv;
      const a = await coordArgs(argv);
      expect(resumeFlags(argv), state.name).toEqual(state.expected);
      expect(a.params).toBe(env.SNN_PARAMS);
      expect(a.output).toBe(state.dir);
      expect(a.external).toBe(true);
      expect(a["min-workers"]).toBe(1);
      // Workers reach the bound port through the service name; remote workers through the published one.
      const [, bindPort] = endpoint(a.bind);
      expect(c.services.worker.command[0]).toBe("snn-worker");
      const [host, connectPort] = endpoint((await workerArgs(c.services.worker.command.slice(1))).connect);
      expect(host).toBe("coordinator");
      expect(connectPort).toBe(bindPort);
      expect(svc.ports).toContain(`${bindPort}:${bindPort}`);
      expect(a["metrics-port"], "the default port, explicit: a container's port is fixed").toBe(DEFAULT_METRICS_PORT);
    }
  });

  it("Prometheus scrapes the coordinator and every worker replica on the ports they serve", async () => {
    const c = compose();
    const mount = (c.services.prometheus.volumes as string[]).find((v) => v.split(":")[1] === "/etc/prometheus/prometheus.yml")!;
    expect(mount.split(":")[0]).toBe("./prometheus/prometheus.compose.yml");
    const prom = yamlDocs(join(DEPLOY, "prometheus/prometheus.compose.yml"))[0];
    const jobs = Object.fromEntries((prom.scrape_configs as any[]).map((j) => [j.job_name, j]));
    expect(Object.keys(jobs).every((j) => j.startsWith("snn-")), "the dashboard selects job=~\"snn-.*\"").toBe(true);
    const coordMetrics = (await coordArgs(runWithStubs("sh", ["-c", c.services.coordinator.command[2]], c.services.coordinator.environment).calls[0].argv))["metrics-port"];
    expect(jobs["snn-coordinator"].static_configs[0].targets).toEqual([`coordinator:${coordMetrics}`]);
    const w = await workerArgs(c.services.worker.command.slice(1));
    expect(w["metrics-port"]).toBe(workerDefaults["metrics-port"]);
    expect(w["metrics-port"]).toBe(9465);
    expect(w.gpu).toBeUndefined();
    expect(jobs["snn-worker"].dns_sd_configs).toEqual([{ names: ["worker"], type: "A", port: w["metrics-port"], refresh_interval: "15s" }]);
  });

  it.skipIf(!which("promtool"))("prometheus.compose.yml passes promtool check config", () => {
    expect(() => execFileSync("promtool", ["check", "config", join(DEPLOY, "prometheus/prometheus.compose.yml")], { stdio: "pipe" })).not.toThrow();
  });

  it("Grafana is provisioned from deploy/grafana with this Prometheus as its datasource", () => {
    const c = compose();
    const mounts = Object.fromEntries((c.services.grafana.volumes as string[]).map((v) => [v.split(":")[1], v.split(":")[0]]));
    expect(mounts["/etc/grafana/provisioning"]).toBe("./grafana/provisioning");
    expect(mounts["/var/lib/grafana/dashboards"]).toBe("./grafana/dashboards");
    const ds = yamlDocs(join(DEPLOY, "grafana/provisioning/datasources/prometheus.yml"))[0];
    expect(ds.datasources[0].url).toBe("http://prometheus:9090");
    expect(c.services.prometheus.ports).toContain("9090:9090");
  });
});

// ---- Kubernetes ---------------------------------------------------------------------------------------------------

describe.skipIf(!hasPyYaml)("deploy/k8s", () => {
  const K8S = join(DEPLOY, "k8s");
  const resources = () => {
    const kustomization = yamlDocs(join(K8S, "kustomization.yaml"))[0];
    return (kustomization.resources as string[]).flatMap((f) => yamlDocs(join(K8S, f)));
  };
  const find = (kind: string, name: string) => resources().find((r) => r.kind === kind && r.metadata.name === name);
  const container = (d: any) => d.spec.template.spec.containers[0];
  const envOf = (c: any) => Object.fromEntries((c.env ?? []).map((e: any) => [e.name, e.value])) as Record<string, string>;

  it("lists every manifest in kustomization.yaml and sets no namespace", () => {
    const listed = (yamlDocs(join(K8S, "kustomization.yaml"))[0].resources as string[]).sort();
    const files = execFileSync("ls", [K8S], { encoding: "utf8" }).split("\n").filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml");
    expect(listed).toEqual(files.sort());
    const all = resources();
    expect(all.map((r) => `${r.kind}/${r.metadata.name}`).sort()).toEqual([
      "ConfigMap/snn-parameters",
      "Deployment/snn-coordinator",
      "Deployment/snn-worker",
      "PersistentVolumeClaim/snn-runs",
      "Service/snn-coordinator",
    ]);
    for (const r of all) expect(r.metadata.namespace, `${r.kind}/${r.metadata.name}`).toBeUndefined();
  });

  it("one coordinator (Recreate) with its Service, volume, parameters and probes on the metrics port", async () => {
    const d = find("Deployment", "snn-coordinator");
    expect(d.spec.replicas).toBe(1);
    expect(d.spec.strategy.type).toBe("Recreate");
    const labels = d.spec.template.metadata.labels;
    expect(d.spec.selector.matchLabels).toEqual(labels);
    const c = container(d);
    expect(c.image).toBe("snn-train:0.1.0");
    const env = envOf(c);
    const pod = d.spec.template.spec;
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(pod.securityContext.runAsUser).toBe(1000);

    // Volumes: the claim exists; the parameters file is the ConfigMap's key at SNN_PARAMS.
    const mounts = Object.fromEntries((c.volumeMounts as any[]).map((m) => [m.name, m.mountPath]));
    const volumes = Object.fromEntries((pod.volumes as any[]).map((v) => [v.name, v]));
    expect(find("PersistentVolumeClaim", volumes.runs.persistentVolumeClaim.claimName)).toBeDefined();
    expect(env.SNN_RUN.startsWith(`${mounts.runs}/`)).toBe(true);
    const cm = find("ConfigMap", volumes.parameters.configMap.name);
    expect(env.SNN_PARAMS).toBe(`${mounts.parameters}/params.toml`);
    const paramsFile = join(tempDir(), "params.toml");
    writeFileSync(paramsFile, cm.data["params.toml"]);
    expect(() => loadConfig(paramsFile)).not.toThrow();
    // The ConfigMap says it is parameters/quickstart.toml: it is, byte for byte.
    expect(cm.data["params.toml"]).toBe(readFileSync(join(ROOT, "parameters/quickstart.toml"), "utf8"));

    // The command: start, restart or resume, with flags snn-coord accepts.
    expect(c.command.slice(0, 2)).toEqual(["sh", "-c"]);
    let a: Args = {};
    for (const state of runDirStates(tempDir())) {
      const r = runWithStubs("sh", ["-c", c.command[2]], { ...env, SNN_RUN: state.dir });
      expect(r.status, r.output).toBe(0);
      expect(resumeFlags(r.calls[0].argv), state.name).toEqual(state.expected);
      a = await coordArgs(r.calls[0].argv);
      expect(a.external).toBe(true);
      expect(a.output).toBe(state.dir);
      expect(a.params).toBe(env.SNN_PARAMS);
    }

    // Ports: the container's named ports are the ones the program binds, and the Service forwards them.
    const ports = Object.fromEntries((c.ports as any[]).map((p) => [p.name, p.containerPort]));
    expect(ports).toEqual({ zmq: endpoint(a.bind)[1], metrics: a["metrics-port"] });
    expect(ports).toEqual({ zmq: 5555, metrics: 9464 });
    expect(d.spec.template.metadata.annotations).toMatchObject({ "prometheus.io/scrape": "true", "prometheus.io/port": String(ports.metrics) });
    for (const probe of ["startupProbe", "readinessProbe", "livenessProbe"]) expect(c[probe].httpGet, probe).toEqual({ path: "/metrics", port: "metrics" });
    const svc = find("Service", "snn-coordinator");
    expect(svc.spec.selector).toEqual(labels);
    expect(Object.fromEntries((svc.spec.ports as any[]).map((p) => [p.name, [p.port, ports[p.targetPort]]]))).toEqual({ zmq: [5555, 5555], metrics: [9464, 9464] });
  });

  it("GPU workers reach the coordinator by its Service name, one GPU each, with flags snn-worker accepts", async () => {
    const d = find("Deployment", "snn-worker");
    const c = container(d);
    expect(c.image).toBe("snn-train-gpu:0.1.0");
    expect(c.resources.limits["nvidia.com/gpu"]).toBe(1);
    const w = await workerArgs(c.command.slice(1));
    expect(c.command[0]).toBe("snn-worker");
    expect(w.gpu).toBe(0);
    const [host, port] = endpoint(w.connect);
    const svc = find("Service", host);
    expect(svc, `Service ${host}`).toBeDefined();
    expect((svc.spec.ports as any[]).find((p) => p.name === "zmq").port).toBe(port);
    expect(w["metrics-port"]).toBe(workerDefaults["metrics-port"]);
    expect(c.ports).toEqual([{ name: "metrics", containerPort: w["metrics-port"] }]);
    expect(d.spec.template.metadata.annotations).toMatchObject({ "prometheus.io/scrape": "true", "prometheus.io/port": String(w["metrics-port"]) });
    for (const probe of ["startupProbe", "readinessProbe", "livenessProbe"]) expect(c[probe].httpGet, probe).toEqual({ path: "/metrics", port: "metrics" });
    expect(d.spec.selector.matchLabels).toEqual(d.spec.template.metadata.labels);
    expect(d.spec.template.spec.securityContext.runAsUser).toBe(1000);
  });

  it("prometheus.k8s.yml keeps the annotated pods and names their jobs snn-coordinator and snn-worker", () => {
    const prom = yamlDocs(join(DEPLOY, "prometheus/prometheus.k8s.yml"))[0];
    const relabel = prom.scrape_configs[0].relabel_configs as any[];
    const keep = relabel.find((r) => r.action === "keep");
    expect(new RegExp(`^${keep.regex}$`).test("snn-train;true")).toBe(true);
    const job = relabel.find((r) => r.target_label === "job");
    const components = resources()
      .filter((r) => r.kind === "Deployment")
      .map((r) => r.spec.template.metadata.labels["app.kubernetes.io/component"]);
    expect(components.map((x) => job.replacement.replace("$1", x)).sort()).toEqual(["snn-coordinator", "snn-worker"]);
  });

  it.skipIf(!which("kubectl"))("kubectl kustomize builds the manifests", () => {
    const out = execFileSync("kubectl", ["kustomize", K8S], { encoding: "utf8" });
    expect(out.match(/^kind: /gm)?.length).toBe(5);
  });
});

// ---- Slurm --------------------------------------------------------------------------------------------------------

describe("deploy/slurm/train.sbatch", () => {
  const SCRIPT = join(DEPLOY, "slurm/train.sbatch");
  const slurmEnv = (runDir: string, extra: Record<string, string> = {}) => ({
    SLURM_JOB_ID: "4242",
    SLURM_JOB_NODELIST: "node[01-02]",
    SLURM_JOB_NUM_NODES: "2",
    SLURM_NTASKS_PER_NODE: "2",
    SLURM_GPUS_ON_NODE: "2",
    SLURM_SUBMIT_DIR: FAKE_HOME,
    STUB_NODES: "node01,node02",
    RUN_DIR: runDir,
    ...extra,
  });
  const params = join(ROOT, "parameters/quickstart.toml");

  it("is valid bash with the sbatch directives for requeueing", () => {
    expect(() => execFileSync("bash", ["-n", SCRIPT])).not.toThrow();
    const text = readFileSync(SCRIPT, "utf8");
    const directives = text.split("\n").filter((l) => l.startsWith("#SBATCH"));
    expect(directives).toContain("#SBATCH --requeue");
    expect(directives.some((l) => /^#SBATCH --signal=B:USR1@\d+$/.test(l))).toBe(true);
    // sbatch reads directives only before the first command.
    const lines = text.split("\n");
    const firstCommand = lines.findIndex((l) => l.trim() && !l.startsWith("#"));
    expect(lines.slice(firstCommand).some((l) => l.startsWith("#SBATCH"))).toBe(false);
  });

  it.skipIf(!which("shellcheck"))("passes shellcheck", () => {
    expect(() => execFileSync("shellcheck", [SCRIPT], { stdio: "pipe" })).not.toThrow();
  });

  it("starts the coordinator on the first node and one GPU worker per GPU on every node, with accepted flags", async () => {
    for (const state of runDirStates(tempDir())) {
      const r = runWithStubs("bash", [SCRIPT, params], slurmEnv(state.dir));
      expect(r.status, r.output).toBe(0);
      const sruns = r.calls.filter((x) => x.bin === "srun");
      expect(sruns.length).toBe(2);
      const coordStep = sruns.find((x) => x.argv.includes("--nodes=1"))!;
      expect(coordStep.argv).toEqual(expect.arrayContaining(["--ntasks=1", "--nodelist=node01", "--overlap", "--gres=none"]));
      const workerStep = sruns.find((x) => x !== coordStep)!;
      expect(workerStep.argv).toEqual(expect.arrayContaining(["--nodes=2", "--ntasks-per-node=2", "--kill-on-bad-exit=0"]));

      const coords = coordinatorCalls(r.calls);
      expect(coords.length).toBe(1);
      const a = await coordArgs(coords[0].argv);
      // CURVE: keys for the 4 worker tasks beside the run directory (kept across requeues), the coordinator admits them.
      const keys = `${state.dir}.keys`;
      const keygen = r.calls.filter((x) => x.bin === "snn-coord" && x.argv.includes("--keygen"));
      expect(keygen.map((k) => k.argv)).toEqual([["--keygen", keys, "--worker-keys", "4"]]);
      expect(a.keys).toBe(keys);
      expect(resumeFlags(coords[0].argv), state.name).toEqual(state.expected);
      expect(a.params).toBe(params);
      expect(a.output).toBe(state.dir);
      expect(a.external).toBe(true);
      expect(a["metrics-port"], "the default port, explicit: a container's port is fixed").toBe(DEFAULT_METRICS_PORT);
      const [, bindPort] = endpoint(a.bind);
      expect(bindPort).toBe(5555);

      const workers = r.calls.filter((x) => x.bin === "snn-worker");
      expect(workers.map((w) => w.localId).sort()).toEqual(["0", "0", "1", "1"]);
      expect(workers.map((w) => w.procId).sort()).toEqual(["0", "1", "2", "3"]);
      for (const w of workers) {
        const wa = await workerArgs(w.argv);
        expect(endpoint(wa.connect)).toEqual(["node01", bindPort]);
        expect(wa.gpu).toBe(Number(w.localId));
        expect(wa["server-key"]).toBe(`${keys}/coordinator.key`);
        expect(wa.key).toBe(`${keys}/workers/worker-${w.procId}.key_secret`);
        // Workers sharing a node need distinct metrics ports: the worker default, then one more per local rank.
        expect(wa["metrics-port"]).toBe((workerDefaults["metrics-port"] as number) + Number(w.localId));
      }
    }
  });

  it("takes device 0 where Slurm binds one GPU per task, and runs sparse-cpu workers on nodes without GPUs", async () => {
    const bound = runWithStubs("bash", [SCRIPT, params], slurmEnv(join(tempDir(), "run"), { CUDA_VISIBLE_DEVICES: "3" }));
    expect(bound.status, bound.output).toBe(0);
    for (const w of bound.calls.filter((x) => x.bin === "snn-worker")) expect((await workerArgs(w.argv)).gpu).toBe(0);

    const env: Record<string, string> = { ...slurmEnv(join(tempDir(), "run")), SLURM_NTASKS_PER_NODE: "3", SNN_METRICS_PORT: "0" };
    delete env.SLURM_GPUS_ON_NODE;
    const cpu = runWithStubs("bash", [SCRIPT, params], env);
    expect(cpu.status, cpu.output).toBe(0);
    const workers = cpu.calls.filter((x) => x.bin === "snn-worker");
    expect(workers.length).toBe(6);
    for (const w of workers) {
      const wa = await workerArgs(w.argv);
      expect(wa.cpu).toBe(true);
      expect(wa.gpu).toBeUndefined();
      expect(wa["metrics-port"]).toBe(0);
    }
    expect((await coordArgs(coordinatorCalls(cpu.calls)[0].argv))["metrics-port"]).toBe(0);
  });

  it("near the time limit (USR1) asks the coordinator to checkpoint, then requeues the job", async () => {
    const log = join(tempDir("snn-deploy-log-"), "calls.jsonl");
    writeFileSync(log, "");
    const env = { PATH: `${STUBS}:${process.env.PATH}`, HOME: process.env.HOME ?? "/tmp", STUB_LOG: log, STUB_COORD: "wait", ...slurmEnv(join(tempDir(), "run")) };
    const child: ChildProcess = spawn("bash", [SCRIPT, params], { env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout!.on("data", (d) => (output += d));
    child.stderr!.on("data", (d) => (output += d));
    const exit = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    const deadline = Date.now() + 20_000;
    // Both steps started (so the script has reached its trap), and the coordinator is up.
    const ready = () => readCalls(log).filter((x) => x.bin === "srun").length === 2 && coordinatorCalls(readCalls(log)).length > 0;
    while (!ready() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    child.kill("SIGUSR1");
    const code = await exit;
    expect(code, output).toBe(130);
    expect(output).toMatch(/requeueing job 4242/);
    expect(readCalls(log).filter((x) => x.bin === "scontrol").map((x) => x.argv)).toContainEqual(["requeue", "4242"]);
  });
});

// ---- multi-host rehearsal -----------------------------------------------------------------------------------------

/** Whether this host can bind 127.0.0.2 (Linux routes all of 127/8 to loopback; other systems may not). */
function canBind127002(): Promise<boolean> {
  return new Promise((done) => {
    const s = createTcpServer();
    s.once("error", (e: NodeJS.ErrnoException) => done(e.code !== "EADDRNOTAVAIL"));
    s.listen(0, "127.0.0.2", () => s.close(() => done(true)));
  });
}

describe("multi-host rehearsal", () => {
  it("a coordinator bound to 127.0.0.2 trains with two external workers and writes its checkpoint", async (ctx) => {
    if (!(await canBind127002())) ctx.skip();
    const dir = tempDir("snn-deploy-rehearsal-");
    const params = smallParams(dir, { epochs: 6, accumulation: 3, checkpoint: 6 });
    const output = join(dir, "run");
    const port = freePort();
    const url = `tcp://127.0.0.2:${port}`;
    const coordinator = start(COORD, [params, "--external", "--insecure", "--bind", url, "--min-workers", "2", "--metrics-port", "0", "--epochs", "6", "--output", output]);
    const workers = [0, 1].map(() => start(WORKER, ["--connect", url, "--metrics-port", "0"]));
    const timer = setTimeout(() => [coordinator, ...workers].forEach((p) => p.child.kill("SIGKILL")), 90_000);
    const code = await coordinator.exit;
    const workerCodes = await Promise.all(workers.map((w) => w.exit));
    clearTimeout(timer);
    if (code !== 0 && /EADDRNOTAVAIL|Can't assign requested address|Cannot assign requested address/.test(coordinator.output())) ctx.skip();
    expect(code, coordinator.output()).toBe(0);
    expect(workerCodes, workers.map((w) => w.output()).join("\n")).toEqual([0, 0]);
    expect(coordinator.output().match(/joined/g)?.length).toBe(2);
    const checkpoint = join(output, "checkpoints/checkpoint_latest.safetensors");
    expect(existsSync(checkpoint)).toBe(true);
    expect(statSync(checkpoint).size).toBeGreaterThan(0);
    expect(JSON.parse(readFileSync(join(output, "metadata.json"), "utf8")).status).toBe("completed");
  });
});
