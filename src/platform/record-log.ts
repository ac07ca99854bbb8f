// The record log that W&B's SDK writes as an offline run's `run-<id>.wandb` (and LevelDB as its write-ahead log):
// a 7-byte file header, then 32 KiB blocks of chunks. Each chunk has a 7-byte header
//
//   crc32: uint32 LE   IEEE CRC-32 of the type byte followed by the data (not masked, unlike LevelDB)
//   length: uint16 LE  bytes of data in this chunk
//   type: uint8        FULL = 1 (a whole record), FIRST = 2, MIDDLE = 3, LAST = 4 (a record split across blocks)
//
// and a chunk never crosses a block boundary: a record that does not fit in what is left of a block is split, and a
// block tail shorter than a chunk header is zero padding. This module frames and unframes opaque records; what they
// hold (protobuf) is the caller's business.
import { crc32 } from "node:zlib";

export const BLOCK_SIZE = 32768;
const CHUNK_HEADER = 7;
export const FILE_HEADER_SIZE = 7;

export const enum ChunkType {
  Full = 1,
  First = 2,
  Middle = 3,
  Last = 4,
}

/** The log's identity: ":W&B", magic 0xBEE1, version 0 (`<4sHB` in the SDK's terms). */
export interface LogHeader {
  ident: string;
  magic: number;
  version: number;
}

export const WANDB_LOG_HEADER: LogHeader = { ident: ":W&B", magic: 0xbee1, version: 0 };

/** A file that is not a record log, or whose contents were damaged (not merely cut short). */
export class RecordLogError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RecordLogError";
  }
}

export function encodeLogHeader(header: LogHeader = WANDB_LOG_HEADER): Buffer {
  const out = Buffer.alloc(FILE_HEADER_SIZE);
  out.write(header.ident, 0, 4, "latin1");
  out.writeUInt16LE(header.magic, 4);
  out.writeUInt8(header.version, 6);
  return out;
}

function chunkChecksum(type: number, data: Uint8Array): number {
  return crc32(data, crc32(Uint8Array.of(type)));
}

/**
 * Frames records for appending to a log that is `offset` bytes long (the file header included). It keeps the offset,
 * so successive calls lay records out exactly as one writer appending to the file would.
 */
export class RecordLogFramer {
  constructor(public offset: number = FILE_HEADER_SIZE) {}

  /** The bytes to append for one record. */
  frame(record: Uint8Array): Buffer {
    const parts: Buffer[] = [];
    let pos = 0;
    let first = true;
    // Each pass writes one chunk: pads a block tail too short for a header, then takes as much of the record as the
    // rest of the block holds.
    do {
      let left = BLOCK_SIZE - (this.offset % BLOCK_SIZE);
      if (left < CHUNK_HEADER) {
        parts.push(Buffer.alloc(left));
        this.offset += left;
        left = BLOCK_SIZE;
      }
      const length = Math.min(record.length - pos, left - CHUNK_HEADER);
      const last = pos + length === record.length;
      const type = first ? (last ? ChunkType.Full : ChunkType.First) : last ? ChunkType.Last : ChunkType.Middle;
      const data = record.subarray(pos, pos + length);
      const header = Buffer.alloc(CHUNK_HEADER);
      header.writeUInt32LE(chunkChecksum(type, data), 0);
      header.writeUInt16LE(length, 4);
      header.writeUInt8(type, 6);
      parts.push(header, Buffer.from(data.buffer, data.byteOffset, data.length));
      this.offset += CHUNK_HEADER + length;
      pos += length;
      first = false;
    } while (pos < record.length);
    return Buffer.concat(parts);
  }
}

export interface ScannedLog {
  header: LogHeader;
  records: Uint8Array[];
  /**
   * Bytes of the file that hold whole records (header included): a log cut short by a crash ends in a partial chunk
   * or a record whose LAST chunk is missing, and a writer continuing it truncates it here first.
   */
  validLength: number;
  /** Whether the file ends in such an incomplete record. */
  truncated: boolean;
}

/**
 * Reads every record of a log. A log cut short (a crash mid-write) gives the records before the cut; a wrong header,
 * a checksum mismatch or chunks out of order throw RecordLogError naming the offset.
 */
export function scanRecordLog(bytes: Uint8Array, expected: LogHeader = WANDB_LOG_HEADER): ScannedLog {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  if (buf.length < FILE_HEADER_SIZE) throw new RecordLogError(`${buf.length} bytes, shorter than the log header`);
  const header: LogHeader = {
    ident: buf.toString("latin1", 0, 4),
    magic: buf.readUInt16LE(4),
    version: buf.readUInt8(6),
  };
  if (header.ident !== expected.ident || header.magic !== expected.magic || header.version !== expected.version) {
    throw new RecordLogError(
      `header ${JSON.stringify(header.ident)} magic 0x${header.magic.toString(16)} version ${header.version}: ` +
        `not a ${expected.ident} log version ${expected.version}`,
    );
  }
  const records: Uint8Array[] = [];
  let pending: Buffer[] | undefined;
  let offset = FILE_HEADER_SIZE;
  let validLength = offset;
  // Each pass reads one chunk (after skipping a block's padding tail) and joins split records.
  while (offset < buf.length) {
    const left = BLOCK_SIZE - (offset % BLOCK_SIZE);
    if (left < CHUNK_HEADER) {
      offset += left;
      continue;
    }
    if (buf.length - offset < CHUNK_HEADER) break;
    const checksum = buf.readUInt32LE(offset);
    const length = buf.readUInt16LE(offset + 4);
    const type = buf.readUInt8(offset + 6);
    if (length > left - CHUNK_HEADER) throw new RecordLogError(`chunk at byte ${offset} runs past its block`);
    if (offset + CHUNK_HEADER + length > buf.length) break;
    const data = buf.subarray(offset + CHUNK_HEADER, offset + CHUNK_HEADER + length);
    if (type < ChunkType.Full || type > ChunkType.Last) throw new RecordLogError(`chunk at byte ${offset} has type ${type}`);
    if (chunkChecksum(type, data) !== checksum) throw new RecordLogError(`checksum mismatch in the chunk at byte ${offset}`);
    if ((type === ChunkType.Full || type === ChunkType.First) !== (pending === undefined)) {
      throw new RecordLogError(`chunk at byte ${offset} (type ${type}) is out of order`);
    }
    offset += CHUNK_HEADER + length;
    if (type === ChunkType.Full) records.push(data);
    else if (type === ChunkType.First) pending = [data];
    else pending?.push(data);
    if (type === ChunkType.Last && pending !== undefined) {
      records.push(Buffer.concat(pending));
      pending = undefined;
    }
    if (pending === undefined) validLength = offset;
  }
  return { header, records, validLength, truncated: validLength < buf.length && !isPadding(buf, validLength) };
}

// The zero tail of a block after the last whole record is padding, not a cut-off record.
function isPadding(buf: Buffer, from: number): boolean {
  const blockEnd = from + (BLOCK_SIZE - (from % BLOCK_SIZE));
  return BLOCK_SIZE - (from % BLOCK_SIZE) < CHUNK_HEADER && buf.length <= blockEnd && buf.subarray(from).every((b) => b === 0);
}
