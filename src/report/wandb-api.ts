/**
 * The part of the W&B HTTP API a run needs, spoken directly rather than through @wandb/sdk 0.5.1: that SDK has no
 * request timeouts, turns a failed run upsert into an uncaught exception (which kills the host process), installs a
 * SIGINT handler that calls process.exit, restarts history offsets at 0 on resume, and cannot upload media. The wire
 * format is the SDK's (GraphQL UpsertBucket / RunUploadUrls at {base}/graphql, history and summary through
 * {base}/files/{entity}/{project}/{run}/file_stream, Basic auth with user "api"), with a timeout on every request.
 */
import { readFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";

const DEFAULT_BASE_URL = "https://api.wandb.ai";
export const DEFAULT_TIMEOUT_MS = 10_000;

export const HISTORY_FILE = "wandb-history.jsonl";
export const SUMMARY_FILE = "wandb-summary.json";

/** What identifies a run on the server, and what the server is told about it when the run is created or resumed. */
export interface RunIdentity {
  runId: string;
  project: string;
  entity?: string;
  /** Display name shown in the UI. */
  name: string;
  config: Record<string, unknown>;
}

export interface ClientOptions {
  baseUrl: string;
  apiKey: string;
  timeoutMs: number;
  /** Aborts every request in flight, e.g. when a finish deadline passes. */
  signal?: AbortSignal;
}

/** JSON has no NaN or Infinity; W&B stores them as these strings (wandb/simplejsonext "DeNaN"). */
export function jsonSafe(_key: string, value: unknown): unknown {
  return typeof value === "number" && !Number.isFinite(value) ? String(value) : value;
}

/** W&B expects every top-level config key wrapped as {value, desc}. */
export function wandbConfig(config: Record<string, unknown>): string {
  const wrapped = Object.fromEntries(Object.entries(config).map(([k, value]) => [k, { desc: null, value }]));
  return JSON.stringify(wrapped, jsonSafe);
}

/** The API to talk to: the given URL, else $WANDB_BASE_URL (as the W&B clients read it), else W&B's cloud. */
export function apiBaseUrl(explicit?: string): string {
  return (explicit ?? process.env.WANDB_BASE_URL ?? DEFAULT_BASE_URL).replace(/\/+$/, "");
}

/** The web page of a run, derived like the SDK's Run.url(). */
export function runUrl(baseUrl: string, entity: string, project: string, runId: string): string {
  return `${baseUrl.replace("api.wandb", "wandb")}/${entity}/${project}/runs/${runId}`;
}

interface GraphqlResponse<T> {
  data?: T;
  errors?: { message: string }[];
}

interface UpsertBucketData {
  upsertBucket: { bucket: { name: string; project: { name: string; entity: { name: string } } } } | null;
}

interface RunUploadUrlsData {
  model: {
    bucket: { files: { uploadHeaders: string[] | null; edges: { node: { name: string; url: string } }[] } } | null;
  } | null;
}

export class WandbClient {
  constructor(private readonly opts: ClientOptions) {}

  /** Creates the run, or updates it when it exists (resume); resolves with the entity and project the server used. */
  async upsertRun(run: RunIdentity): Promise<{ entity: string; project: string }> {
    const entity = run.entity ?? (await this.defaultEntity());
    const data = await this.graphql<UpsertBucketData>(
      `mutation UpsertBucket($name: String, $project: String, $entity: String, $displayName: String,
          $config: JSONString, $host: String) {
        upsertBucket(input: {name: $name, modelName: $project, entityName: $entity, displayName: $displayName,
            config: $config, host: $host}) {
          bucket { name project { name entity { name } } }
        }
      }`,
      {
        name: run.runId,
        project: run.project,
        entity,
        displayName: run.name,
        config: wandbConfig(run.config),
        host: hostname(),
      },
    );
    const bucket = data.upsertBucket?.bucket;
    if (!bucket) throw new Error("W&B did not return the run it upserted");
    return { entity: bucket.project.entity.name, project: bucket.project.name };
  }

  async fileStream(entity: string, project: string, runId: string, body: unknown): Promise<void> {
    const path = ["files", entity, project, runId, "file_stream"].map(encodeURIComponent).join("/");
    await this.request(`${this.opts.baseUrl}/${path}`, {
      method: "POST",
      headers: { ...this.authHeaders(), "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  }

  /** Uploads files (paths relative to `filesDir`, also their names in the run) to the signed URLs W&B hands out. */
  async uploadFiles(entity: string, project: string, runId: string, filesDir: string, names: string[]): Promise<void> {
    const data = await this.graphql<RunUploadUrlsData>(
      `query RunUploadUrls($name: String!, $files: [String]!, $entity: String, $run: String!) {
        model(name: $name, entityName: $entity) {
          bucket(name: $run) { files(names: $files) { uploadHeaders edges { node { name url(upload: true) } } } }
        }
      }`,
      { name: project, entity, run: runId, files: names },
    );
    const files = data.model?.bucket?.files;
    if (!files) throw new Error(`W&B has no run ${entity}/${project}/${runId} to upload files to`);
    const headers = Object.fromEntries(
      (files.uploadHeaders ?? []).map((h) => {
        const colon = h.indexOf(":");
        return [h.slice(0, colon).trim(), h.slice(colon + 1).trim()];
      }),
    );
    for (const { node } of files.edges) {
      await this.request(node.url, { method: "PUT", headers, body: await readFile(join(filesDir, node.name)) });
    }
  }

  private async defaultEntity(): Promise<string> {
    type Viewer = { viewer: { entity: string | null } | null };
    const data = await this.graphql<Viewer>(`query Viewer { viewer { entity } }`, {});
    const entity = data.viewer?.entity;
    if (!entity) throw new Error("W&B did not say which entity the API key belongs to; pass an entity");
    return entity;
  }

  private async graphql<T>(query: string, variables: Record<string, unknown>): Promise<T> {
    const res = await this.request(`${this.opts.baseUrl}/graphql`, {
      method: "POST",
      headers: { ...this.authHeaders(), "content-type": "application/json" },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await res.json()) as GraphqlResponse<T>;
    if (body.errors?.length) throw new Error(`W&B GraphQL error: ${body.errors.map((e) => e.message).join("; ")}`);
    if (body.data === undefined) throw new Error("W&B GraphQL response has no data");
    return body.data;
  }

  private authHeaders(): Record<string, string> {
    return {
      authorization: `Basic ${Buffer.from(`api:${this.opts.apiKey}`).toString("base64")}`,
      "user-agent": "snn-train",
    };
  }

  private async request(url: string, init: RequestInit): Promise<Response> {
    const timeout = AbortSignal.timeout(this.opts.timeoutMs);
    const signal = this.opts.signal ? AbortSignal.any([this.opts.signal, timeout]) : timeout;
    let res: Response;
    try {
      res = await fetch(url, { ...init, signal });
    } catch (err) {
      throw new Error(`${init.method} ${url}: ${describe(err)}`);
    }
    if (!res.ok) {
      const text = (await res.text().catch(() => "")).slice(0, 200);
      throw new Error(`${init.method} ${url}: HTTP ${res.status}${text ? ` ${text}` : ""}`);
    }
    return res;
  }
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : "";
  return `${err.message}${cause}`;
}

/**
 * Brings a run on the server up to date with a local offline run directory: run metadata and config, history lines
 * (by line offset, so re-sending lines is idempotent and a resumed run continues where its file does), the summary,
 * and files. Live logging queues as it goes; snn-wandb-sync queues a whole directory at once. A failed push keeps
 * everything queued so the next push retries it.
 */
export class RunMirror {
  private target: { entity: string; project: string } | undefined;
  private lines: string[] = [];
  /** History line number (offset in the server's copy) of lines[0]. */
  private offset = 0;
  private summary: string | undefined;
  private readonly files = new Set<string>();
  private uploaded: string[] = [];

  constructor(
    private readonly client: WandbClient,
    private readonly run: RunIdentity,
    /** The run directory's files/ folder: names queued with addFiles are relative to it. */
    private readonly filesDir: string,
    private readonly maxLinesPerRequest = 1000,
  ) {}

  /** Where the run lives once a push has reached the server. */
  get location(): { entity: string; project: string } | undefined {
    return this.target;
  }

  /** Queues history lines; `offset` is the line number of the first (the lines before it were queued or sent). */
  addLines(offset: number, lines: readonly string[]): void {
    if (this.lines.length === 0) this.offset = offset;
    this.lines.push(...lines);
  }

  setSummary(json: string): void {
    this.summary = json;
  }

  addFiles(names: readonly string[]): void {
    for (const name of names) this.files.add(name);
  }

  get pending(): boolean {
    return this.target === undefined || this.lines.length > 0 || this.summary !== undefined || this.files.size > 0;
  }

  /** Sends everything queued; with `exitCode`, also marks the run finished. Throws on the first failure. */
  async push(exitCode?: number): Promise<void> {
    this.target ??= await this.client.upsertRun(this.run);
    const { entity, project } = this.target;
    if (this.files.size > 0) {
      const names = [...this.files];
      await this.client.uploadFiles(entity, project, this.run.runId, this.filesDir, names);
      for (const name of names) this.files.delete(name);
      this.uploaded.push(...names);
    }
    do {
      const content = this.lines.slice(0, this.maxLinesPerRequest);
      const files: Record<string, { offset: number; content: string[] }> = {};
      if (content.length > 0) files[HISTORY_FILE] = { offset: this.offset, content };
      const lastChunk = content.length === this.lines.length;
      if (lastChunk && this.summary !== undefined) files[SUMMARY_FILE] = { offset: 0, content: [this.summary] };
      if (Object.keys(files).length === 0 && this.uploaded.length === 0) break;
      const summary = this.summary;
      await this.client.fileStream(entity, project, this.run.runId, { files, uploaded: this.uploaded });
      this.uploaded = [];
      // Lines and a newer summary may have been queued while the request was in flight.
      this.lines.splice(0, content.length);
      this.offset += content.length;
      if (lastChunk && this.summary === summary) this.summary = undefined;
    } while (this.lines.length > 0);
    if (exitCode !== undefined) {
      await this.client.fileStream(entity, project, this.run.runId, { complete: true, exitcode: exitCode });
    }
  }
}
