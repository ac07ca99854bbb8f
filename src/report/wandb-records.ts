/**
 * The protobuf records of W&B's transaction log (`run-<id>.wandb`): the part of the SDK's `wandb_internal.proto`
 * that a training run writes, with the SDK's message names and field numbers (which are the format; names of fields
 * we never write are left out). protobufjs encodes and decodes them; record-log.ts frames them.
 */
import protobuf from "protobufjs";

/** Our subset of wandb_internal.proto (wandb/proto/wandb_internal.proto in the SDK's source). */
export const WANDB_RECORD_SCHEMA = `
syntax = "proto3";
package wandb_internal;

message Timestamp { int64 seconds = 1; int32 nanos = 2; }

message Record {
  int64 num = 1;
  oneof record_type {
    HistoryRecord history = 2;
    SummaryRecord summary = 3;
    ConfigRecord config = 5;
    FilesRecord files = 6;
    StatsRecord stats = 7;
    ArtifactRecord artifact = 8;
    MetricRecord metric = 12;
    OutputRawRecord output_raw = 13;
    RunRecord run = 17;
    RunExitRecord exit = 18;
    FinalRecord final = 20;
    HeaderRecord header = 21;
    EnvironmentRecord environment = 26;
  }
  string uuid = 19;
}

message VersionInfo { string producer = 1; string min_consumer = 2; }
message HeaderRecord { VersionInfo version_info = 1; }
message FinalRecord {}

message GitRepoRecord { string remote_url = 1; string commit = 2; }

message RunRecord {
  string run_id = 1;
  string entity = 2;
  string project = 3;
  ConfigRecord config = 4;
  SummaryRecord summary = 5;
  string run_group = 6;
  string job_type = 7;
  string display_name = 8;
  string notes = 9;
  repeated string tags = 10;
  string host = 13;
  int64 starting_step = 14;
  Timestamp start_time = 17;
  bool resumed = 18;
  int32 runtime = 20;
  GitRepoRecord git = 21;
}

message EnvironmentRecord {
  string os = 1;
  string python = 2;
  Timestamp started_at = 3;
  repeated string args = 5;
  string program = 6;
  string code_path = 7;
  GitRepoRecord git = 9;
  string root = 11;
  string host = 12;
  string username = 13;
  string executable = 14;
  uint32 cpu_count = 16;
  uint32 cpu_count_logical = 17;
  string writer_id = 199;
}

message ConfigItem { string key = 1; repeated string nested_key = 2; string value_json = 16; }
message ConfigRecord { repeated ConfigItem update = 1; repeated ConfigItem remove = 2; }

message SummaryItem { string key = 1; repeated string nested_key = 2; string value_json = 16; }
message SummaryRecord { repeated SummaryItem update = 1; repeated SummaryItem remove = 2; }

message HistoryItem { string key = 1; repeated string nested_key = 2; string value_json = 16; }
message HistoryStep { int64 num = 1; }
message HistoryRecord { repeated HistoryItem item = 1; HistoryStep step = 2; }

message FilesItem {
  enum PolicyType { NOW = 0; END = 1; LIVE = 2; }
  enum FileType { OTHER = 0; WANDB = 1; MEDIA = 2; ARTIFACT = 3; }
  string path = 1;
  PolicyType policy = 2;
  FileType type = 3;
}
message FilesRecord { repeated FilesItem files = 1; }

message StatsItem { string key = 1; string value_json = 16; }
message StatsRecord {
  enum StatsType { SYSTEM = 0; }
  StatsType stats_type = 1;
  Timestamp timestamp = 2;
  repeated StatsItem item = 3;
}

message OutputRawRecord {
  enum OutputType { STDERR = 0; STDOUT = 1; }
  OutputType output_type = 1;
  Timestamp timestamp = 2;
  string line = 3;
}

message MetricOptions { bool step_sync = 1; bool hidden = 2; bool defined = 3; }
message MetricSummary { bool min = 1; bool max = 2; bool mean = 3; bool best = 4; bool last = 5; bool none = 6; bool copy = 7; bool first = 8; }
message MetricRecord {
  enum MetricGoal { GOAL_UNSET = 0; GOAL_MINIMIZE = 1; GOAL_MAXIMIZE = 2; }
  string name = 1;
  string step_metric = 4;
  MetricOptions options = 6;
  MetricSummary summary = 7;
  MetricGoal goal = 8;
}

message StoragePolicyConfigItem { string key = 1; string value_json = 2; }
message ArtifactManifestEntry { string path = 1; string digest = 2; int64 size = 4; string local_path = 6; }
message ArtifactManifest {
  int32 version = 1;
  string storage_policy = 2;
  repeated StoragePolicyConfigItem storage_policy_config = 3;
  repeated ArtifactManifestEntry contents = 4;
}
message ArtifactRecord {
  string run_id = 1;
  string project = 2;
  string entity = 3;
  string type = 4;
  string name = 5;
  string digest = 6;
  string description = 7;
  string metadata = 8;
  bool user_created = 9;
  repeated string aliases = 11;
  ArtifactManifest manifest = 12;
  bool finalize = 14;
  string client_id = 15;
  string sequence_client_id = 16;
}

message RunExitRecord { int32 exit_code = 1; int32 runtime = 2; }
`;

export interface Timestamp {
  seconds: number;
  nanos: number;
}
/** key/value_json pairs of config, summary, history and stats records. */
export interface JsonItem {
  key: string;
  value_json: string;
}
export interface GitRepo {
  remote_url?: string;
  commit?: string;
}
export interface FilesItem {
  path: string;
  policy: "NOW" | "END" | "LIVE";
  type?: "OTHER" | "WANDB" | "MEDIA" | "ARTIFACT";
}
export interface ArtifactEntry {
  path: string;
  /** base64 of the file's MD5. */
  digest: string;
  size: number;
  local_path: string;
}

/** One record of the log: exactly one of the record_type fields is set. */
export interface WandbRecord {
  num?: number;
  header?: { version_info?: { producer: string; min_consumer?: string } };
  run?: {
    run_id: string;
    entity?: string;
    project: string;
    config?: { update: JsonItem[] };
    run_group?: string;
    job_type?: string;
    display_name?: string;
    notes?: string;
    tags?: string[];
    host?: string;
    starting_step?: number;
    start_time?: Timestamp;
    resumed?: boolean;
    runtime?: number;
    git?: GitRepo;
  };
  environment?: {
    os?: string;
    python?: string;
    started_at?: Timestamp;
    args?: string[];
    program?: string;
    code_path?: string;
    git?: GitRepo;
    root?: string;
    host?: string;
    username?: string;
    executable?: string;
    cpu_count?: number;
    cpu_count_logical?: number;
    writer_id?: string;
  };
  config?: { update: JsonItem[] };
  summary?: { update: JsonItem[] };
  history?: { item: JsonItem[]; step: { num: number } };
  files?: { files: FilesItem[] };
  stats?: { stats_type?: "SYSTEM"; timestamp: Timestamp; item: JsonItem[] };
  output_raw?: { output_type: "STDERR" | "STDOUT"; timestamp: Timestamp; line: string };
  metric?: {
    name: string;
    step_metric?: string;
    options?: { defined?: boolean; step_sync?: boolean; hidden?: boolean };
    summary?: { min?: boolean; max?: boolean; last?: boolean; best?: boolean };
    goal?: "GOAL_UNSET" | "GOAL_MINIMIZE" | "GOAL_MAXIMIZE";
  };
  artifact?: {
    run_id: string;
    project: string;
    entity?: string;
    type: string;
    name: string;
    digest: string;
    description?: string;
    metadata?: string;
    aliases: string[];
    manifest: {
      version: number;
      storage_policy: string;
      storage_policy_config: { key: string; value_json: string }[];
      contents: ArtifactEntry[];
    };
    finalize?: boolean;
    client_id?: string;
    sequence_client_id?: string;
  };
  exit?: { exit_code: number; runtime: number };
  final?: Record<string, never>;
}

export type RecordType = Exclude<keyof WandbRecord, "num">;

const RecordMessage = protobuf.parse(WANDB_RECORD_SCHEMA, { keepCase: true }).root.lookupType("wandb_internal.Record");

export function encodeWandbRecord(record: WandbRecord): Uint8Array {
  return RecordMessage.encode(RecordMessage.fromObject(record)).finish();
}

/** Decodes one record; enums as their names, 64-bit integers as numbers, absent scalars left out. */
export function decodeWandbRecord(bytes: Uint8Array): WandbRecord {
  return RecordMessage.toObject(RecordMessage.decode(bytes), { enums: String, longs: Number }) as WandbRecord;
}

/** Which record a decoded record is. */
export function recordType(record: WandbRecord): RecordType | undefined {
  return (Object.keys(record) as (keyof WandbRecord)[]).find((k): k is RecordType => k !== "num");
}

export function timestampOf(ms: number): Timestamp {
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: Math.round((ms - seconds * 1000) * 1e6) };
}
