/**
 * Prometheus file-based service discovery for the processes of a run, so that concurrent runs are all scraped without
 * editing prometheus.yml: `<run>/prometheus-targets.json` records them, and one file per job in `<runs>/.prometheus/`
 * (the run directory's parent; deploy/prometheus/prometheus.yml reads runs/.prometheus/*.json) lives as long as the
 * run does. Prometheus allows a wildcard in a discovery path's last part only, hence the shared folder.
 */
import { mkdirSync, rmSync } from "node:fs";
import { hostname } from "node:os";
import { basename, dirname, join } from "node:path";
import { writeFileAtomic } from "../platform/atomic-file.js";
import { PROMETHEUS_TARGETS_FILE } from "../io/run-dir.js";

/** Next to the run directories: the folder deploy/prometheus/prometheus.yml watches. */
export const SHARED_TARGETS_DIR = ".prometheus";

interface TargetGroup {
  targets: string[];
  labels: Record<string, string>;
}

export class PrometheusTargets {
  private readonly run: string;
  private readonly workers: string[] = [];
  private readonly shared: { coordinator: string; workers: string };

  /** Publishes the coordinator's target; the shared files are removed when the process exits, however it ends. */
  constructor(
    private readonly outputDir: string,
    private readonly coordinatorPort: number,
  ) {
    this.run = basename(outputDir);
    const dir = join(dirname(outputDir), SHARED_TARGETS_DIR);
    mkdirSync(dir, { recursive: true });
    this.shared = { coordinator: join(dir, `${this.run}-coordinator.json`), workers: join(dir, `${this.run}-workers.json`) };
    process.on("exit", () => Object.values(this.shared).forEach((f) => rmSync(f, { force: true })));
    this.write();
  }

  /** A worker that joined with a metrics port: scraped from now on (on this machine as localhost). */
  addWorker(host: string, port: number): void {
    const target = `${host === hostname() ? "localhost" : host}:${port}`;
    if (port === 0 || this.workers.includes(target)) return;
    this.workers.push(target);
    this.write();
  }

  private write(): void {
    const group = (job: string, targets: string[]): TargetGroup[] => (targets.length > 0 ? [{ targets, labels: { job, run: this.run } }] : []);
    const coordinator = group("snn-coordinator", this.coordinatorPort > 0 ? [`localhost:${this.coordinatorPort}`] : []);
    const workers = group("snn-worker", this.workers);
    const json = (g: TargetGroup[]) => `${JSON.stringify(g, null, 2)}\n`;
    writeFileAtomic(join(this.outputDir, PROMETHEUS_TARGETS_FILE), json([...coordinator, ...workers]));
    writeFileAtomic(this.shared.coordinator, json(coordinator));
    writeFileAtomic(this.shared.workers, json(workers));
  }
}
