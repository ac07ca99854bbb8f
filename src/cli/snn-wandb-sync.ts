#!/usr/bin/env node
import { main } from "../report/wandb-sync.js";

process.exitCode = await main(process.argv.slice(2));
