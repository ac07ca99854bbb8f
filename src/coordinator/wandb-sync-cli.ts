#!/usr/bin/env node
import { main } from "./wandb-sync.js";

process.exitCode = await main(process.argv.slice(2));
