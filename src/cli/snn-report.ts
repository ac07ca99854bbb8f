#!/usr/bin/env node
import { main } from "../report/run-report.js";

process.exitCode = await main(process.argv.slice(2));
