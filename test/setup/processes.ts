/**
 * Setup file (vitest.config.ts setupFiles): when a test fails or times out, the processes it started through
 * test/helpers/runs.ts (start, track, coord) that are still running have their last lines of output printed, and are
 * killed, so that a hang shows what each process was doing and nothing it left leaks into the next test.
 */
import { basename } from "node:path";
import { afterAll, afterEach } from "vitest";
import { liveProcesses } from "../helpers/runs.js";

const TAIL_LINES = 60;

function dumpAndKill(why: string): void {
  const live = [...liveProcesses].filter((p) => p.child.exitCode === null && p.child.signalCode === null);
  if (live.length === 0) return;
  const parts = live.map(({ child, output }) => {
    const args = child.spawnargs.slice(1).map((a) => (a.includes("/") && a.endsWith(".js") ? basename(a) : a));
    const lines = output().split("\n");
    if (lines.at(-1) === "") lines.pop();
    const tail = lines.slice(-TAIL_LINES);
    const cut = lines.length > tail.length ? `(last ${tail.length} of ${lines.length} lines)` : `(${lines.length} lines)`;
    return `--- pid ${child.pid}: ${args.join(" ")} ${cut}\n${tail.join("\n")}`;
  });
  console.error(`${why}: ${live.length} process(es) it started still running; their output, then SIGKILL:\n${parts.join("\n")}\n---`);
  for (const p of live) {
    p.child.kill("SIGKILL");
    liveProcesses.delete(p);
  }
}

afterEach((context) => {
  if (context.task.result?.state === "fail") dumpAndKill(`test "${context.task.name}" failed`);
});

// A beforeAll that failed or timed out runs no test, hence no afterEach: what is left at the end of the file is printed
// if anything in it failed, and killed in any case.
afterAll((file) => {
  const failed = (t: { result?: { state?: string }; tasks?: unknown[] }): boolean => t.result?.state === "fail" || (t.tasks ?? []).some((c) => failed(c as typeof t));
  if (failed(file)) dumpAndKill(`${file.name}: something failed`);
  else
    for (const p of liveProcesses) {
      p.child.kill("SIGKILL");
      liveProcesses.delete(p);
    }
});
