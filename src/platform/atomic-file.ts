// Crash-safe file replacement: readers of `path` see either the old or the new contents, never a mix,
// even if the process is SIGKILLed or the machine loses power mid-write.
//
// A crash can leave a `.${basename}.tmp-*` file next to the target. Nothing ever reads those names; a run
// directory sweeps them when it is opened (io/run-dir.ts), other places leave them, since another process may be
// writing one.
import { randomBytes } from "node:crypto";
import { closeSync, fstatSync, fsyncSync, ftruncateSync, openSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { decodeSafetensors, encodeSafetensors, type Tensor } from "./safetensors.js";

/**
 * A file that could not be written, with the file and the operation named (a full disk, a read-only file system,
 * missing permissions): an expected error that the CLIs report in one line, unlike a bug.
 */
export class FileWriteError extends Error {
  constructor(
    readonly path: string,
    operation: string,
    readonly errno: NodeJS.ErrnoException,
  ) {
    super(`${path}: cannot ${operation}: ${describeErrno(errno)}`);
    this.name = "FileWriteError";
  }

  /** What went wrong, without the file: "no space left on device (ENOSPC)". */
  get reason(): string {
    return describeErrno(this.errno);
  }

  /** The file system is full (or the quota spent): nothing written to it can succeed until space is freed. */
  get diskFull(): boolean {
    return this.errno.code === "ENOSPC" || this.errno.code === "EDQUOT";
  }
}

const ERRNO_TEXT: Record<string, string> = {
  ENOSPC: "no space left on device",
  EDQUOT: "disk quota exceeded",
  EROFS: "read-only file system",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EIO: "input/output error",
  ENOENT: "its directory does not exist",
  ENOTDIR: "a component of the path is not a directory",
};

function describeErrno(e: NodeJS.ErrnoException): string {
  return e.code && ERRNO_TEXT[e.code] ? `${ERRNO_TEXT[e.code]} (${e.code})` : e.message;
}

function asFileWriteError(e: unknown, path: string, operation: string): unknown {
  return e instanceof FileWriteError || !(e as NodeJS.ErrnoException).code ? e : new FileWriteError(path, operation, e as NodeJS.ErrnoException);
}

export function writeFileAtomic(path: string, data: Buffer | Uint8Array | string): void {
  try {
    replaceFile(path, data);
  } catch (e) {
    throw asFileWriteError(e, path, "write");
  }
}

/**
 * writeFileAtomic for a small status file that must be updated even on a full disk (a run's metadata saying why it
 * failed): when the file system has no room for the temporary copy, the file is overwritten in place, in the pages
 * it already holds. Only then is the update not crash-safe, which a run that is stopping anyway can afford.
 */
export function writeStatusFile(path: string, data: string): void {
  try {
    writeFileAtomic(path, data);
  } catch (e) {
    if (!(e instanceof FileWriteError && e.diskFull)) throw e;
    const bytes = Buffer.from(data);
    let fd: number;
    try {
      fd = openSync(path, "r+");
    } catch {
      throw e;
    }
    try {
      writeSync(fd, bytes, 0, bytes.length, 0);
      ftruncateSync(fd, bytes.length);
    } catch (inPlace) {
      throw asFileWriteError(inPlace, path, "write");
    } finally {
      closeSync(fd);
    }
  }
}

/**
 * Appends `text` whole or not at all: a failed append (a full disk) is cut back to the file's previous length, so
 * that no partial line is left for a reader (metrics.csv, read again on resume).
 */
export function appendWhole(path: string, text: string): void {
  let fd: number;
  try {
    fd = openSync(path, "a");
  } catch (e) {
    throw asFileWriteError(e, path, "append to");
  }
  try {
    const before = fstatSync(fd).size;
    try {
      writeFileSync(fd, text);
    } catch (e) {
      ftruncateSync(fd, before);
      throw e;
    }
  } catch (e) {
    throw asFileWriteError(e, path, "append to");
  } finally {
    closeSync(fd);
  }
}

function replaceFile(path: string, data: Buffer | Uint8Array | string): void {
  const dir = dirname(path);
  // Same directory as the target so rename() stays on one filesystem and is atomic.
  const tmp = join(dir, `.${basename(path)}.tmp-${process.pid}-${randomBytes(6).toString("hex")}`);
  try {
    const fd = openSync(tmp, "wx");
    try {
      writeFileSync(fd, data);
      // Without this the rename can reach the disk before the data, leaving an empty file after power loss.
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  // Persists the rename itself; until then a power loss can bring back the old directory entry.
  const dirFd = openSync(dir, "r");
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}

export function readSafetensorsFile(path: string, o: { requireChecksum?: boolean } = {}): ReturnType<typeof decodeSafetensors> {
  return decodeSafetensors(readFileSync(path), path, o);
}

export function writeSafetensorsFile(
  path: string,
  tensors: Record<string, Tensor>,
  metadata?: Record<string, string>,
): void {
  writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}
