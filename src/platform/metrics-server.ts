/**
 * What the coordinator's and every worker's Prometheus endpoint have in common: a private registry (never the
 * prom-client global one, so a coordinator and its in-process test workers can coexist), the default process_* and
 * nodejs_* metrics, snn_build_info, and the HTTP server that exposes GET /metrics.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { collectDefaultMetrics, exponentialBuckets, Gauge, Registry } from "prom-client";

export interface BuildInfo {
  /** Package version of snn-train. */
  version: string;
  /** Engine this process simulates with, or the one it assigns work for (sparse-cpu, tfjs, tfjs-gpu). */
  engine: string;
}

export const METRICS_PATH = "/metrics";

/** The metrics port cannot be served (taken, or not allowed): an expected start-up error, reported in one line. */
export class MetricsPortError extends Error {
  constructor(
    message: string,
    readonly inUse: boolean,
  ) {
    super(message);
    this.name = "MetricsPortError";
  }
}

/** 10 ms .. 5.5 min: from a tiny test network to the default network on a slow CPU. */
export const EPOCH_DURATION_BUCKETS = exponentialBuckets(0.01, 2, 16);

export abstract class MetricsServer {
  readonly registry = new Registry();
  private server: Server | undefined;
  /** The port served on; 0 while not serving. */
  port = 0;

  private readonly buildInfo: Gauge<"version" | "engine" | "node_version">;

  protected constructor(private build: BuildInfo) {
    collectDefaultMetrics({ register: this.registry });
    this.buildInfo = new Gauge({
      name: "snn_build_info",
      help: "Constant 1, labelled with the snn-train version, engine and Node.js version of this process.",
      labelNames: ["version", "engine", "node_version"] as const,
      registers: [this.registry],
    });
    this.setEngine(build.engine);
  }

  /** The engine label, once known (a coordinator learns it from its first worker). */
  setEngine(engine: string): void {
    this.build = { ...this.build, engine };
    this.buildInfo.reset();
    this.buildInfo.set({ version: this.build.version, engine, node_version: process.version }, 1);
  }

  /** The exposition text a scrape would return. */
  metricsText(): Promise<string> {
    return this.registry.metrics();
  }

  /**
   * Serves /metrics on `port` as given by --metrics-port, where 0 means "off": nothing is bound and 0 is returned.
   * Resolves with the bound port. `host` defaults to all interfaces, since Prometheus usually scrapes from elsewhere.
   */
  serve(port: number, host?: string): Promise<number> {
    return port === 0 ? Promise.resolve(0) : this.listen(port, host);
  }

  /** Serves on the first free port of `first`, `first` + 1, … (`tries` of them); resolves with the bound port. */
  async serveFirstFree(first: number, tries: number, host?: string): Promise<number> {
    for (let port = first; ; port++) {
      try {
        return await this.listen(port, host);
      } catch (e) {
        if (!(e instanceof MetricsPortError && e.inUse) || port >= first + tries - 1 || port >= 65535) throw e;
      }
    }
  }

  /** Like serve, but port 0 binds an ephemeral port (for tests and for callers that pick ports themselves). */
  listen(port: number, host?: string): Promise<number> {
    if (this.server !== undefined) {
      return Promise.reject(new Error("metrics server is already listening"));
    }
    const server = createServer((req, res) => void this.handle(req, res));
    return new Promise<number>((resolve, reject) => {
      server.once("error", (err: NodeJS.ErrnoException) => {
        const where = `${host ?? "*"}:${port}`;
        reject(
          err.code === "EADDRINUSE"
            ? new MetricsPortError(`metrics port ${where} is already in use; choose another with --metrics-port (0 = off)`, true)
            : new MetricsPortError(`cannot serve metrics on ${where}: ${err.message}`, false),
        );
      });
      server.listen(port, host, () => {
        this.server = server;
        this.port = (server.address() as AddressInfo).port;
        resolve(this.port);
      });
    });
  }

  /** Stops serving; idempotent. Open keep-alive scrape connections are cut so shutdown never waits on Prometheus. */
  close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.port = 0;
    if (server === undefined) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      server.close((err) => (err ? reject(err) : resolve()));
      server.closeAllConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    if (path !== METRICS_PATH) {
      res.writeHead(404, { "content-type": "text/plain; charset=utf-8" });
      res.end(`not found; metrics are at ${METRICS_PATH}\n`);
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    try {
      const body = await this.registry.metrics();
      res.writeHead(200, { "content-type": this.registry.contentType });
      res.end(req.method === "HEAD" ? undefined : body);
    } catch (err) {
      res.writeHead(500, { "content-type": "text/plain; charset=utf-8" }).end(`${String(err)}\n`);
    }
  }
}
