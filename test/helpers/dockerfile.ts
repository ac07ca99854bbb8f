/** The deploy files read as the tests need them: Dockerfile stages and steps, COPY sources, .dockerignore rules, YAML. */
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";

/** No YAML parser among the dependencies: PyYAML, where python3 has it, turns the files into JSON. */
export const hasPyYaml = spawnSync("python3", ["-c", "import yaml"]).status === 0;
const parsedYaml = new Map<string, string>();
export function yamlDocs(file: string): any[] {
  const script = "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))";
  if (!parsedYaml.has(file)) parsedYaml.set(file, execFileSync("python3", ["-c", script, file], { encoding: "utf8" }));
  // A fresh copy each time, so that no test sees another's changes.
  return (JSON.parse(parsedYaml.get(file)!) as any[]).filter((d) => d !== null);
}

export interface Stage {
  from: string;
  name?: string;
  steps: { op: string; args: string }[];
}

/** The stages of a Dockerfile, with continuation lines joined and comments dropped. */
export function dockerStages(file: string): Stage[] {
  const lines: string[] = [];
  let current = "";
  for (const raw of readFileSync(file, "utf8").split("\n")) {
    const line = raw.trim();
    if (line.startsWith("#") || (!line && !current)) continue;
    current += (current ? " " : "") + line.replace(/\\$/, "").trim();
    if (!line.endsWith("\\")) {
      if (current) lines.push(current);
      current = "";
    }
  }
  const stages: Stage[] = [];
  for (const line of lines) {
    const [, op, args] = /^(\S+)\s*(.*)$/.exec(line)!;
    if (op.toUpperCase() === "FROM") {
      const [, from, name] = /^(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?/i.exec(args)!;
      stages.push({ from, name, steps: [] });
    } else if (stages.length) stages.at(-1)!.steps.push({ op: op.toUpperCase(), args });
  }
  return stages;
}

/** COPY steps as {from, sources, dest}. */
export function copies(stage: Stage): { from?: string; sources: string[]; dest: string }[] {
  return stage.steps
    .filter((s) => s.op === "COPY")
    .map((s) => {
      const words = s.args.split(/\s+/);
      const flags = words.filter((w) => w.startsWith("--"));
      const paths = words.filter((w) => !w.startsWith("--"));
      return { from: flags.find((f) => f.startsWith("--from="))?.slice(7), sources: paths.slice(0, -1), dest: paths.at(-1)! };
    });
}

/** Whether a .dockerignore lets `path` into the build context (last matching rule wins; a rule matching a parent counts). */
export function inContext(ignoreFile: string, path: string): boolean {
  const rules = readFileSync(ignoreFile, "utf8")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"))
    .map((l) => {
      const negate = l.startsWith("!");
      const glob = (negate ? l.slice(1) : l).replace(/^\/+|\/+$/g, "");
      const re = glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*\*\/?|\*|\?/g, (t) => (t.startsWith("**") ? ".*" : t === "*" ? "[^/]*" : "[^/]"));
      return { negate, re: new RegExp(`^${re}$`) };
    });
  const parts = path.split("/");
  let included = true;
  for (const rule of rules)
    for (let i = 1; i <= parts.length; i++)
      if (rule.re.test(parts.slice(0, i).join("/"))) {
        included = rule.negate;
        break;
      }
  return included;
}

