/**
 * Worker-thread entry: renders figure sets (and, at the end of a run, its report.html) off the coordinator's event
 * loop, one at a time, at the lowest CPU priority, so that it takes the time training leaves idle rather than slowing
 * training down (Linux keeps a nice value per thread; elsewhere it would apply to the whole process, so it is left
 * alone there). The PNGs are then rasterised and compressed on this thread too (renderOnThisThread), not on libuv's
 * shared pool, whose threads run at normal priority.
 */
import { setPriority } from "node:os";
import { serveRpc } from "../../platform/thread-rpc.js";
import { writeRunReport } from "../run-report.js";
import type { FigureRequest } from "./queue.js";
import { renderFigureSet, renderOnThisThread } from "./render.js";

/** The figure thread's nice value (0 normal, 19 lowest). */
const FIGURE_NICE = 19;

if (process.platform === "linux") {
  try {
    setPriority(FIGURE_NICE);
    renderOnThisThread();
  } catch {
    // Not permitted (an unusual sandbox): render at normal priority.
  }
}

serveRpc<undefined, FigureRequest, string[]>(async (m) => ("report" in m ? [await writeRunReport(m.report)] : renderFigureSet(m.data, m.dir)));
