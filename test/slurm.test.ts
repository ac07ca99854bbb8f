/**
 * deploy/slurm/train.sbatch on a real Slurm (issue #20): a one-node cluster on this machine (munged, slurmctld,
 * slurmd from Debian's slurm-wlm, started by test/helpers/slurm-local.sh as root), the script submitted with sbatch
 * as a user would. A run completes with the results of a local run; a run requeued mid-way (scontrol requeue)
 * continues from its checkpoint and ends bit-identical to an uninterrupted one. Skipped, saying why, where Slurm is
 * not installed or cannot run (not root).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { coord, ensureBuilt, finalWeights, ROOT, smallParams, tempDir, waitFor } from "./helpers/runs.js";

const HELPER = join(ROOT, "test/helpers/slurm-local.sh");
const installed = ["slurmctld", "slurmd", "munged", "sbatch"].every((bin) => spawnSync("which", [bin]).status === 0);
const root = process.getuid?.() === 0;
const why = !installed ? "slurm-wlm (slurmctld, slurmd, munge) is not installed" : !root ? "starting Slurm's daemons needs root" : "";
if (why) console.warn(`${why}: the tests on a real Slurm cluster are skipped`);

describe.skipIf(why !== "")("deploy/slurm/train.sbatch on a real one-node Slurm cluster", () => {
  const cluster = tempDir("snn-slurm-");
  const env = { ...process.env, SLURM_CONF: join(cluster, "slurm.conf") };
  const slurm = (bin: string, args: string[]) => execFileSync(bin, args, { env, cwd: ROOT, encoding: "utf8" }).trim();
  beforeAll(() => {
    ensureBuilt();
    execFileSync("bash", [HELPER, "start", cluster], { encoding: "utf8" });
  }, 60_000);
  afterAll(() => {
    spawnSync("bash", [HELPER, "stop", cluster]);
  });

  /** sbatch of the shipped script on one node with two sparse-cpu workers; returns the job id. */
  const submit = (params: string, runDir: string): string =>
    slurm("sbatch", [
      "--parsable",
      "--nodes=1",
      "--ntasks-per-node=2",
      "--cpus-per-task=1",
      "--gres=none",
      "--time=10",
      `--output=${runDir}.out`,
      `--export=ALL,RUN_DIR=${runDir},SNN_METRICS_PORT=0,SNN_PORT=${20000 + Math.floor(Math.random() * 20000)}`,
      join(ROOT, "deploy/slurm/train.sbatch"),
      params,
    ]);
  const job = (id: string) => {
    const text = slurm("scontrol", ["show", "job", id]);
    return { state: /JobState=(\S+)/.exec(text)?.[1], restarts: Number(/Restarts=(\d+)/.exec(text)?.[1]), exit: /ExitCode=(\S+)/.exec(text)?.[1] };
  };
  const updates = (runDir: string) => (existsSync(join(runDir, "metrics.csv")) ? readFileSync(join(runDir, "metrics.csv"), "utf8").trim().split("\n").length - 1 : 0);

  it("a submitted run completes with the results of a local run", async () => {
    const dir = tempDir();
    const params = smallParams(dir, { epochs: 30 });
    const local = join(dir, "local");
    expect((await coord([params, "--workers", "2", "--output", local])).code).toBe(0);
    const runDir = join(dir, "slurm-run");
    const id = submit(params, runDir);
    await waitFor(() => job(id).state === "COMPLETED" || job(id).state === "FAILED", 120_000, "the job to end", () => readFileSync(`${runDir}.out`, "utf8"));
    expect(job(id), readFileSync(`${runDir}.out`, "utf8")).toMatchObject({ state: "COMPLETED", exit: "0:0" });
    expect(finalWeights(runDir)).toEqual(finalWeights(local));
  }, 180_000);

  it("a run requeued mid-way (scontrol requeue) continues from its checkpoint and ends bit-identical to an uninterrupted one", async () => {
    const dir = tempDir();
    const params = smallParams(dir, { epochs: 600 });
    const local = join(dir, "local");
    expect((await coord([params, "--workers", "2", "--output", local], 180_000)).code).toBe(0);
    const runDir = join(dir, "requeued");
    const id = submit(params, runDir);
    await waitFor(() => updates(runDir) >= 20, 120_000, "20 updates", () => readFileSync(`${runDir}.out`, "utf8"));
    slurm("scontrol", ["requeue", id]);
    await waitFor(() => job(id).restarts >= 1 && job(id).state === "PENDING", 60_000, "the requeue");
    // A requeued job waits two minutes before it is eligible again; let it start sooner, but not within the second of
    // the requeue: slurmd revokes the job's credential at the requeue, with a resolution of seconds, and kills a start
    // whose credential is not newer ("Killing non-startable batch job: Job credential revoked", exit 1).
    await new Promise((resolve) => setTimeout(resolve, 2500));
    slurm("scontrol", ["update", `JobId=${id}`, "StartTime=now"]);
    await waitFor(() => job(id).state === "COMPLETED" || job(id).state === "FAILED", 300_000, "the requeued job to end", () => readFileSync(`${runDir}.out`, "utf8"));
    const out = readFileSync(`${runDir}.out`, "utf8");
    expect(job(id), out).toMatchObject({ state: "COMPLETED", exit: "0:0", restarts: 1 });
    expect(out).toMatch(/snn-train: resuming .*requeued \(restart 1\)/);
    expect(finalWeights(runDir)).toEqual(finalWeights(local));
  }, 480_000);
});
