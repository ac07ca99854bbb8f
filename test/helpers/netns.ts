/**
 * Hosts made of Linux network namespaces (issue #20): a bridge in the root namespace, and per host a namespace
 * `snn-<id>-h<i>` joined to it by a veth pair, with address 10.77.<x>.<i>/24 and lo up. Real TCP between them.
 * Needs root and iproute2; `canUseNetns()` says whether they are here, `netnsUnavailable` why not.
 */
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { ROOT, track, type Proc } from "./runs.js";

function ip(args: string[]): string {
  return execFileSync("ip", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

let probed: string | null | undefined;

/** Null where namespaces work, else the reason they do not (not root, no `ip`, `ip netns add` fails). */
export function netnsUnavailable(): string | null {
  if (probed !== undefined) return probed;
  probed = null;
  if (process.platform !== "linux") probed = `not Linux (${process.platform})`;
  else if (process.getuid?.() !== 0) probed = "not running as root";
  else {
    const name = `snn-probe-${randomBytes(3).toString("hex")}`;
    try {
      ip(["-V"]);
    } catch {
      probed = "iproute2 (`ip`) is not installed";
    }
    if (probed === null) {
      try {
        ip(["netns", "add", name]);
        ip(["netns", "del", name]);
      } catch (e) {
        probed = `\`ip netns add\` fails: ${String((e as { stderr?: string }).stderr ?? e).trim()}`;
      }
    }
  }
  return probed;
}

export function canUseNetns(): boolean {
  return netnsUnavailable() === null;
}

export interface Hosts {
  /** Namespace names, index 1..n (index 0 unused). */
  ns: string[];
  /** Host i's address. */
  addr: (i: number) => string;
  /** Host i's veth end in the root namespace (down = partitioned). */
  rootVeth: (i: number) => string;
  partition: (i: number) => void;
  heal: (i: number) => void;
  /** Null where `tc qdisc ... netem` works in host i's namespace, else why not. */
  netemUnavailable: () => string | null;
  /** netem on host i's interface (both directions would need both ends; the host's egress is enough for a test). */
  netem: (i: number, spec: string[] | null) => void;
  /** Null where nftables can drop packets at random in a namespace (`nft ... numgen random`), else why not. */
  nftUnavailable: () => string | null;
  /** Drops `percent`% of the packets host i sends and receives, chosen at random by nftables (null: none). */
  loss: (i: number, percent: number | null) => void;
  /** Packets host i's loss rules have dropped so far. */
  dropped: (i: number) => number;
  teardown: () => void;
}

export function makeHosts(n: number): Hosts {
  const id = randomBytes(3).toString("hex");
  const x = 1 + Math.floor(Math.random() * 250);
  const bridge = `snb${id}`;
  const ns = ["", ...Array.from({ length: n }, (_, k) => `snn-${id}-h${k + 1}`)];
  const rootVeth = (i: number) => `snv${id}${i}`;
  const created: Array<() => void> = [];
  const teardown = () => {
    for (const undo of created.reverse()) {
      try {
        undo();
      } catch {
        // already gone
      }
    }
    created.length = 0;
  };
  try {
    ip(["link", "add", bridge, "type", "bridge"]);
    created.push(() => ip(["link", "del", bridge]));
    ip(["link", "set", bridge, "up"]);
    for (let i = 1; i <= n; i++) {
      ip(["netns", "add", ns[i]]);
      created.push(() => ip(["netns", "del", ns[i]]));
      const peer = `snp${id}${i}`;
      ip(["link", "add", rootVeth(i), "type", "veth", "peer", "name", peer]);
      created.push(() => ip(["link", "del", rootVeth(i)]));
      ip(["link", "set", peer, "netns", ns[i]]);
      ip(["-n", ns[i], "link", "set", peer, "name", "eth0"]);
      ip(["-n", ns[i], "addr", "add", `10.77.${x}.${i}/24`, "dev", "eth0"]);
      ip(["-n", ns[i], "link", "set", "lo", "up"]);
      ip(["-n", ns[i], "link", "set", "eth0", "up"]);
      ip(["link", "set", rootVeth(i), "master", bridge]);
      ip(["link", "set", rootVeth(i), "up"]);
    }
  } catch (e) {
    teardown();
    throw e;
  }
  let netemProbe: string | null | undefined;
  let nftProbe: string | null | undefined;
  const nft = (i: number, args: string[]) => execFileSync("ip", ["netns", "exec", ns[i], "nft", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  const addLoss = (i: number, percent: number) => {
    nft(i, ["add", "table", "inet", "snnloss"]);
    for (const hook of ["input", "output"]) {
      nft(i, ["add", "chain", "inet", "snnloss", hook, `{ type filter hook ${hook} priority 0; }`]);
      nft(i, ["add", "rule", "inet", "snnloss", hook, "meta", "iifname", "!=", "lo", "meta", "oifname", "!=", "lo", "numgen", "random", "mod", "100", "lt", String(percent), "counter", "drop"]);
    }
  };
  return {
    ns,
    addr: (i) => `10.77.${x}.${i}`,
    rootVeth,
    partition: (i) => ip(["link", "set", rootVeth(i), "down"]),
    heal: (i) => ip(["link", "set", rootVeth(i), "up"]),
    netemUnavailable: () => {
      if (netemProbe !== undefined) return netemProbe;
      try {
        execFileSync("ip", ["netns", "exec", ns[1], "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"], { stdio: ["ignore", "pipe", "pipe"] });
        execFileSync("ip", ["netns", "exec", ns[1], "tc", "qdisc", "del", "dev", "lo", "root"], { stdio: "ignore" });
        netemProbe = null;
      } catch (e) {
        netemProbe = `tc netem does not work in a namespace here (kernel module sch_netem missing?): ${String((e as { stderr?: string }).stderr ?? e).trim()}`;
      }
      return netemProbe;
    },
    nftUnavailable: () => {
      if (nftProbe !== undefined) return nftProbe;
      try {
        addLoss(1, 1);
        nft(1, ["delete", "table", "inet", "snnloss"]);
        nftProbe = null;
      } catch (e) {
        nftProbe = `nftables cannot drop packets at random in a namespace here (apt-get install nftables; nf_tables kernel support): ${String((e as { stderr?: string }).stderr ?? e).trim()}`;
      }
      return nftProbe;
    },
    dropped: (i) => [...String(nft(i, ["list", "table", "inet", "snnloss"])).matchAll(/counter packets (\d+)/g)].reduce((n, m) => n + Number(m[1]), 0),
    loss: (i, percent) => (percent === null ? nft(i, ["delete", "table", "inet", "snnloss"]) : addLoss(i, percent)),
    netem: (i, spec) => {
      const args = spec ? ["qdisc", "replace", "dev", "eth0", "root", "netem", ...spec] : ["qdisc", "del", "dev", "eth0", "root"];
      execFileSync("ip", ["netns", "exec", ns[i], "tc", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    },
    teardown,
  };
}

/** Like runs.ts start(), but the process runs inside namespace `ns`. */
export function startIn(ns: string, script: string, args: string[]): Proc {
  return track(spawn("ip", ["netns", "exec", ns, process.execPath, script, ...args], { cwd: ROOT, env: process.env, stdio: ["ignore", "pipe", "pipe"] }));
}
