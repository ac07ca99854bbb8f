/**
 * An offline run's `run-<id>.wandb`: the transaction log that W&B's SDK writes and `wandb sync` uploads, made of
 * protobuf records (wandb-records.ts) in the SDK's block framing (platform/record-log.ts). Records are appended
 * with synchronous writes, so that a crash loses at most the record being written; a resumed run rewrites the log
 * once, keeping what the run before it logged and leaving out the history it logs again.
 */
import { closeSync, existsSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { writeFileAtomic } from "../platform/atomic-file.js";
import { encodeLogHeader, RecordLogError, RecordLogFramer, scanRecordLog } from "../platform/record-log.js";
import { decodeWandbRecord, encodeWandbRecord, recordType, type RecordType, type WandbRecord } from "./wandb-records.js";

/** Records that describe the whole run: a resumed run writes them anew instead of keeping the old ones. */
const REWRITTEN: ReadonlySet<RecordType> = new Set(["header", "run", "environment", "metric", "summary", "exit", "final"]);

export interface ReadTransactionLog {
  records: WandbRecord[];
  /** The log ended in a record cut short (a crash mid-write); it is left out. */
  truncated: boolean;
}

/** Reads and decodes a whole log; throws RecordLogError (or a protobuf error) for a damaged one. */
export function readTransactionLog(path: string): ReadTransactionLog {
  const scanned = scanRecordLog(readFileSync(path));
  return { records: scanned.records.map(decodeWandbRecord), truncated: scanned.truncated };
}

export class TransactionLog {
  private readonly framer = new RecordLogFramer();
  private nextNum = 1;

  private constructor(
    readonly path: string,
    private fd: number | undefined,
  ) {}

  /**
   * Starts the log at `path` with `opening` (the header and run records), followed, when the file exists (a resumed
   * run), by what it holds apart from run-level records and history rows at or after `resumeStep`. A log that cannot
   * be read is kept as `path.corrupt-<time>` and a new one started; `warn` says so.
   */
  static open(path: string, opening: WandbRecord[], resumeStep: number | undefined, warn: (message: string) => void): TransactionLog {
    let kept: WandbRecord[] = [];
    if (existsSync(path)) {
      try {
        kept = readTransactionLog(path).records.filter((r) => {
          const type = recordType(r);
          if (type === undefined || REWRITTEN.has(type)) return false;
          return !(type === "history" && resumeStep !== undefined && (r.history?.step?.num ?? 0) >= resumeStep);
        });
      } catch (err) {
        const aside = `${path}.corrupt-${Date.now()}`;
        renameSync(path, aside);
        const why = err instanceof RecordLogError ? err.message : String(err);
        warn(`W&B: ${path} could not be read (${why}); kept as ${aside}, starting a new log`);
      }
    }
    const log = new TransactionLog(path, undefined);
    const body = [...opening, ...kept].map((r) => log.frame(r));
    // Atomic: a crash during the rewrite leaves the old log, never half of the new one.
    writeFileAtomic(path, Buffer.concat([encodeLogHeader(), ...body]));
    log.fd = openSync(path, "a");
    return log;
  }

  /** Appends one record (numbered in order); throws what the write throws (a full disk). */
  append(record: WandbRecord): void {
    if (this.fd === undefined) throw new Error(`W&B transaction log ${this.path} is closed`);
    const bytes = this.frame(record);
    let written = 0;
    while (written < bytes.length) written += writeSync(this.fd, bytes, written);
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private frame(record: WandbRecord): Buffer {
    return this.framer.frame(encodeWandbRecord({ ...record, num: this.nextNum++ }));
  }
}
