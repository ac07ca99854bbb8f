"""An independent reader of W&B's transaction log (run-<id>.wandb), for the tests: written from the format's
description (a `<4sHB` header ":W&B" 0xBEE1 0, then 32 KiB blocks of chunks `<IHB` crc32/length/type, the CRC
being zlib.crc32 of the type byte and the data), with nothing shared with src/.

Usage: wandb_log_reader.py LOG [SDK_DIR]. Prints one JSON object: the chunk types in order, each record's payload
(base64) and, when SDK_DIR holds the SDK's generated protobuf modules (wandb/proto/ from the wandb wheel, with the
protobuf package), each record decoded by them as a dict. Exits 1 with a message on any violation of the format.
"""
import base64
import json
import struct
import sys
import zlib

BLOCK = 32768
HEADER = 7


def fail(message):
    print(message, file=sys.stderr)
    sys.exit(1)


def read(path):
    data = open(path, "rb").read()
    if len(data) < 7:
        fail("shorter than the header")
    ident, magic, version = struct.unpack("<4sHB", data[:7])
    if (ident, magic, version) != (b":W&B", 0xBEE1, 0):
        fail(f"bad header {ident!r} {magic:#x} {version}")
    pos, chunks, records, pending = 7, [], [], None
    while pos < len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:
            if data[pos:pos + left].strip(b"\0"):
                fail(f"non-zero padding at {pos}")
            pos += left
            continue
        crc, length, kind = struct.unpack("<IHB", data[pos:pos + HEADER])
        if HEADER + length > left:
            fail(f"chunk at {pos} crosses its block")
        body = data[pos + HEADER:pos + HEADER + length]
        if len(body) != length:
            fail(f"chunk at {pos} cut short")
        if zlib.crc32(body, zlib.crc32(bytes([kind]))) != crc:
            fail(f"bad crc at {pos}")
        chunks.append(kind)
        if kind == 1 and pending is None:
            records.append(body)
        elif kind == 2 and pending is None:
            pending = body
        elif kind == 3 and pending is not None:
            pending += body
        elif kind == 4 and pending is not None:
            records.append(pending + body)
            pending = None
        else:
            fail(f"chunk type {kind} out of order at {pos}")
        pos += HEADER + length
    if pending is not None:
        fail("log ends inside a record")
    return chunks, records


def main():
    chunks, records = read(sys.argv[1])
    decoded = None
    if len(sys.argv) > 2:
        sys.path.insert(0, sys.argv[2])
        from google.protobuf.json_format import MessageToDict
        from wandb.proto import wandb_internal_pb2

        decoded = []
        for payload in records:
            record = wandb_internal_pb2.Record()
            record.ParseFromString(payload)
            decoded.append(MessageToDict(record, preserving_proto_field_name=True))
    print(json.dumps({
        "chunks": chunks,
        "records": [base64.b64encode(r).decode() for r in records],
        "sdk": decoded,
    }))


main()
