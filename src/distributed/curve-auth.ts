/**
 * Authenticated, encrypted transport between coordinator and workers: ZeroMQ CURVE (RFC 26) with a ZAP handler
 * (RFC 27) that admits exactly the worker public keys of an allow-list directory. Keys live in czmq's zcert files, so
 * that other ZeroMQ tools read them: `NAME.key` holds the public key, `NAME.key_secret` both keys, Z85 text.
 *
 *   snn-coord --keygen DIR [--worker-keys K]     DIR/coordinator.key{,_secret}, DIR/workers/worker-<i>.key{,_secret}
 *   snn-coord --external --keys DIR               CURVE server; admits the public keys in DIR/workers/*.key
 *   snn-worker --server-key DIR/coordinator.key --key DIR/workers/worker-0.key_secret
 *
 * The allow-list is read again whenever the directory changes, so adding a key file admits a new worker without a
 * restart. Key material never reaches a log line, metadata.json or W&B: only file paths and key names do.
 */
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { curveKeyPair, Reply } from "zeromq";
import { z85Decode } from "../platform/z85.js";

export class KeyFileError extends Error {}

/** A CURVE key pair as Z85 text (40 characters each). */
export interface KeyPair {
  publicKey: string;
  secretKey: string;
}

/** The ZAP domain the coordinator's socket authenticates in. */
export const ZAP_DOMAIN = "snn-train";

/** The text of a zcert certificate (ZPL): public only, or with the secret key. */
export function certificateText(key: { publicKey: string; secretKey?: string }, generated: Date): string {
  const secret = key.secretKey !== undefined;
  return [
    `#   ****  Generated on ${generated.toISOString().replace("T", " ").slice(0, 19)} by snn-train  ****`,
    secret ? "#   ZeroMQ CURVE **Secret** Certificate" : "#   ZeroMQ CURVE Public Certificate",
    secret
      ? "#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions."
      : "#   Exchange securely, or use a secure mechanism to verify the contents\n#   of this file after exchange.",
    "",
    "metadata",
    "curve",
    `    public-key = "${key.publicKey}"`,
    ...(secret ? [`    secret-key = "${key.secretKey}"`] : []),
    "",
  ].join("\n");
}

/**
 * `snn-coord --keygen DIR --worker-keys K`: a coordinator key pair and K worker key pairs. Secret files are mode 0600,
 * DIR/workers 0700; an existing key file is never overwritten. Returns the files written.
 */
export function generateKeys(dir: string, workers: number, now = new Date()): string[] {
  const pairs: [string, KeyPair][] = [[join(dir, "coordinator"), curveKeyPair()]];
  for (let i = 0; i < workers; i++) pairs.push([join(dir, "workers", `worker-${i}`), curveKeyPair()]);
  const taken = pairs.flatMap(([base]) => [`${base}.key`, `${base}.key_secret`]).filter((f) => existsSync(f));
  if (taken.length > 0) throw new KeyFileError(`--keygen ${dir}: ${taken[0]} exists; keys are never overwritten (move them away, or use another directory)`);
  mkdirSync(join(dir, "workers"), { recursive: true, mode: 0o700 });
  const written: string[] = [];
  for (const [base, pair] of pairs) {
    writeFileSync(`${base}.key`, certificateText({ publicKey: pair.publicKey }, now));
    writeFileSync(`${base}.key_secret`, certificateText(pair, now), { mode: 0o600 });
    chmodSync(`${base}.key_secret`, 0o600);
    written.push(`${base}.key`, `${base}.key_secret`);
  }
  return written;
}

/** The public and (if present) secret key of a zcert file, checked: Z85 text of 32 bytes each. */
function readCertificate(path: string, what: string): { publicKey: string; secretKey?: string } {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new KeyFileError(`${what} ${path}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const field = (name: string): string | undefined => {
    const m = new RegExp(`^\\s+${name}\\s*=\\s*"([^"]*)"\\s*$`, "m").exec(text);
    if (!m) return undefined;
    const bytes = z85Decode(m[1]);
    if (!bytes || bytes.length !== 32) throw new KeyFileError(`${what} ${path}: ${name} is not a CURVE key (40 Z85 characters for 32 bytes)`);
    return m[1];
  };
  if (!/^curve\s*$/m.test(text)) throw new KeyFileError(`${what} ${path}: not a ZeroMQ CURVE certificate (no "curve" section; snn-coord --keygen writes them)`);
  const publicKey = field("public-key");
  if (!publicKey) throw new KeyFileError(`${what} ${path}: no public-key in its curve section`);
  return { publicKey, secretKey: field("secret-key") };
}

/** The public key of a certificate (public or secret file). */
export function readPublicKey(path: string, what: string): string {
  return readCertificate(path, what).publicKey;
}

/** The key pair of a secret certificate; a public one is refused, naming the file to use instead. */
export function readKeyPair(path: string, what: string): KeyPair {
  const c = readCertificate(path, what);
  if (c.secretKey === undefined) throw new KeyFileError(`${what} ${path}: a public certificate where the secret one is needed (the ${basename(path)}_secret file)`);
  return { publicKey: c.publicKey, secretKey: c.secretKey };
}

/**
 * The worker public keys the coordinator admits: every `*.key` file in a directory, by key bytes, read again when the
 * directory's modification time changes (a key file added or removed).
 */
export class AllowList {
  private keys = new Map<string, string>();
  private mtime = -1;

  constructor(private readonly dir: string) {
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new KeyFileError(`--keys: ${dir} is not a directory of worker public keys (snn-coord --keygen writes DIR/workers)`);
    this.refresh();
    if (this.keys.size === 0) throw new KeyFileError(`--keys: ${dir} holds no worker public key (*.key); no worker could join`);
  }

  /** The name of the key file that admits these 32 key bytes, or null. */
  admits(key: Uint8Array): string | null {
    this.refresh();
    return this.keys.get(Buffer.from(key).toString("hex")) ?? null;
  }

  get size(): number {
    return this.keys.size;
  }

  private refresh(): void {
    const mtime = statSync(this.dir).mtimeMs;
    if (mtime === this.mtime) return;
    const keys = new Map<string, string>();
    for (const f of readdirSync(this.dir).filter((f) => f.endsWith(".key")).sort()) {
      const bytes = z85Decode(readPublicKey(join(this.dir, f), "--keys allow-list entry"))!;
      keys.set(Buffer.from(bytes).toString("hex"), f);
    }
    this.keys = keys;
    this.mtime = mtime;
  }
}

/**
 * The process's ZAP handler: libzmq asks it about every CURVE handshake on a socket with a ZAP domain; it answers 200
 * for a client key the allow-list admits and 400 otherwise (the socket then reports handshake:error:auth).
 */
export class ZapHandler {
  private readonly socket = new Reply({ linger: 0 });

  constructor(private readonly allow: AllowList) {}

  async start(): Promise<void> {
    await this.socket.bind("inproc://zeromq.zap.01");
    void this.serve();
  }

  close(): void {
    this.socket.close();
  }

  private async serve(): Promise<void> {
    try {
      for await (const frames of this.socket) {
        // RFC 27: version, request id, domain, address, identity, mechanism, credentials (the client's public key).
        const [version, requestId, domain, , , mechanism, key] = frames;
        const name = domain?.toString() === ZAP_DOMAIN && mechanism?.toString() === "CURVE" && key?.length === 32 ? this.allow.admits(key) : null;
        await this.socket.send([version ?? "1.0", requestId ?? "", name ? "200" : "400", name ? "OK" : "key not allowed", name ?? "", ""]);
      }
    } catch (e) {
      // Closing the socket ends the loop; anything else is unexpected but must not take the coordinator down.
      if (!this.socket.closed) console.error(`[snn-coord] ZAP handler stopped: ${(e as Error).message}`);
    }
  }
}
