// Crash-safe file replacement: readers of `path` see either the old or the new contents, never a mix,
// even if the process is SIGKILLed or the machine loses power mid-write.
//
// A crash can leave a `.${basename}.tmp-*` file next to the target. Nothing ever reads those names, so
// they are harmless; they are not swept automatically because another process may be writing one.
import { randomBytes } from "node:crypto";
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { decodeSafetensors, encodeSafetensors, type Tensor } from "./safetensors.js";

export function writeFileAtomic(path: string, data: Buffer | Uint8Array | string): void {
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
