/**
 * Worker-thread entry: renders figure sets off the coordinator's event loop, one at a time, at low CPU priority so
 * that it takes the time training leaves idle rather than slowing training down (Linux keeps a nice value per thread;
 * elsewhere it would apply to the whole process, so it is left alone there). The PNGs are rasterised and compressed
 * on this thread too (FIGURE_THREAD), not on libuv's shared pool, whose threads run at normal priority.
 */
import { setPriority } from "node:os";
import { FigureData } from "../figure-data.js";
import { serveRpc } from "../../platform/thread-rpc.js";
import { renderFigureSet, renderOnThisThread } from "./render.js";

/** The figure thread's nice value (0 normal, 19 lowest). */
const FIGURE_NICE = 15;

if (process.platform === "linux") {
  try {
    setPriority(FIGURE_NICE);
    renderOnThisThread();
  } catch {
    // Not permitted (an unusual sandbox): render at normal priority.
  }
}

serveRpc<undefined, { data: FigureData; dir: string }, string[]>((m) => renderFigureSet(m.data, m.dir));
