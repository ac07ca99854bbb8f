/** `npm run docs:config`: writes docs/configuration.md from the schema and its reference (model/config-reference.ts). */
import { readFileSync, writeFileSync } from "node:fs";
import { configurationMarkdown } from "../model/config-reference.js";

const root = new URL("../../", import.meta.url);
// Any valid parameters file makes the schema read every key; the document does not depend on which.
const example = readFileSync(new URL("parameters/fitting-activity.toml", root), "utf8");
writeFileSync(new URL("docs/configuration.md", root), configurationMarkdown(example));
