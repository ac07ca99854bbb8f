/**
 * snn-wandb-sync: uploads offline W&B run directories written by the coordinator (runs whose W&B was offline,
 * unreachable or disabled by a missing key). Where the official `wandb` CLI is installed it only finds the run
 * directories and hands them to `wandb sync`, which uploads everything in run-<id>.wandb (console, system metrics,
 * artifacts included); elsewhere, or with --builtin, it uploads files/ itself through W&B's HTTP API (history,
 * summary, config, metadata, images). Re-running it is harmless: history goes by line offset and files are
 * overwritten. Exit codes: 0 all synced, 1 an upload failed, 2 bad usage (missing directory, not an offline run,
 * no WANDB_API_KEY).
 */
import { spawn, spawnSync } from "node:child_process";
import { readdir, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import yargs from "yargs";
import { apiBaseUrl, RunMirror, runUrl, WandbClient } from "./wandb-api.js";
import { METADATA_FILE, NotAnOfflineRunError, OFFLINE_RUN_PREFIX, readOfflineRun, WANDB_DIR } from "./wandb.js";

class UsageError extends Error {}

/** Runs the command with `argv` (without node and script); resolves with the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  try {
    return await sync(argv);
  } catch (err) {
    if (err instanceof UsageError || err instanceof NotAnOfflineRunError) {
      console.error(`snn-wandb-sync: ${err.message}`);
      return 2;
    }
    throw err;
  }
}

async function sync(argv: readonly string[]): Promise<number> {
  const args = await yargs([...argv])
    .scriptName("snn-wandb-sync")
    .usage(
      "$0 DIR...\n\nUploads offline W&B runs: a run directory (output_dir/wandb/offline-run-*), " +
        "or a run's output_dir or wandb/ folder to upload every run in it.",
    )
    .option("project", { type: "string", describe: "W&B project (default: the one the run was logged with)" })
    .option("entity", { type: "string", describe: "W&B entity (default: the run's, else the API key's default)" })
    .option("base-url", { type: "string", describe: "W&B API URL (default: $WANDB_BASE_URL, else api.wandb.ai)" })
    .option("timeout", { type: "number", default: 30, describe: "seconds allowed per request (--builtin)" })
    .option("builtin", { type: "boolean", default: false, describe: "upload files/ through W&B's HTTP API even where the wandb CLI is installed" })
    .option("wandb-cli", { type: "string", default: "wandb", describe: "the official wandb CLI to hand the runs to" })
    .demandCommand(1, "give at least one DIR")
    .strict()
    .version(false)
    .help()
    .exitProcess(false)
    .fail((message, err) => {
      throw err ?? new UsageError(`${message} (see --help)`);
    })
    .parseAsync();
  // With exitProcess(false), --help prints the help and still resolves.
  if (args.help === true) return 0;

  const runDirs: string[] = [];
  for (const dir of args._.map(String)) runDirs.push(...(await findRunDirs(resolve(dir))));
  const runs = await Promise.all(runDirs.map(readOfflineRun));
  const cli = args["wandb-cli"];
  if (!args.builtin && spawnSync(cli, ["--version"], { stdio: "ignore" }).status === 0) {
    const passed = [...(args.project ? ["--project", args.project] : []), ...(args.entity ? ["--entity", args.entity] : [])];
    console.log(`snn-wandb-sync: ${cli} sync ${[...passed, ...runDirs].join(" ")}`);
    const code = await new Promise<number | null>((done) => {
      const child = spawn(cli, ["sync", ...passed, ...runDirs], { stdio: "inherit", env: { ...process.env, ...(args["base-url"] && { WANDB_BASE_URL: args["base-url"] }) } });
      child.on("error", () => done(null));
      child.on("exit", (c) => done(c));
    });
    return code === 0 ? 0 : 1;
  }
  const apiKey = process.env.WANDB_API_KEY;
  if (!apiKey) throw new UsageError("no API key: set WANDB_API_KEY (find it at https://wandb.ai/authorize)");

  const baseUrl = apiBaseUrl(args["base-url"]);
  const client = new WandbClient({ baseUrl, apiKey, timeoutMs: args.timeout * 1000 });
  let status = 0;
  for (const run of runs) {
    const { metadata } = run;
    const entity = args.entity ?? metadata.entity;
    const identity = {
      runId: metadata.runId,
      project: args.project ?? metadata.project,
      entity,
      name: metadata.name,
      config: run.config,
    };
    const mirror = new RunMirror(client, identity, run.filesDir);
    mirror.addLines(0, run.historyLines);
    if (run.summary !== undefined) mirror.setSummary(run.summary);
    mirror.addFiles(run.files);
    try {
      // A run without an exit code crashed or is still running; it is not marked finished so it can still be synced.
      await mirror.push(metadata.exitCode);
      const at = mirror.location ?? { entity: "?", project: "?" };
      const url = runUrl(baseUrl, at.entity, at.project, metadata.runId);
      console.log(`synced ${run.runDir} (${run.historyLines.length} steps) to ${url}`);
    } catch (err) {
      console.error(`snn-wandb-sync: ${run.runDir}: ${err instanceof Error ? err.message : String(err)}`);
      status = 1;
    }
  }
  return status;
}

/** `dir` itself if it is a run directory, else the offline runs in it or in its wandb/ folder. */
async function findRunDirs(dir: string): Promise<string[]> {
  const isDir = (path: string) => stat(path).then((s) => s.isDirectory(), () => false);
  if (!(await isDir(dir))) throw new UsageError(`${dir} does not exist or is not a directory`);
  if (await stat(join(dir, "files", METADATA_FILE)).then(() => true, () => false)) return [dir];
  const found: string[] = [];
  for (const parent of [dir, join(dir, WANDB_DIR)]) {
    if (!(await isDir(parent))) continue;
    for (const name of (await readdir(parent)).sort()) {
      if (name.startsWith(OFFLINE_RUN_PREFIX) && (await isDir(join(parent, name)))) found.push(join(parent, name));
    }
  }
  if (found.length === 0) {
    throw new NotAnOfflineRunError(dir, `no files/${METADATA_FILE} and no ${OFFLINE_RUN_PREFIX}* directories in it`);
  }
  return found;
}
