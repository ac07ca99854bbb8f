/** Worker-thread entry: renders figure sets off the coordinator's event loop, one at a time. */
import { parentPort } from "node:worker_threads";
import { FigureData } from "../../shared/figure-data.js";
import { renderFigureSet } from "./render.js";

parentPort!.on("message", (m: { id: number; data: FigureData; dir: string }) => {
  renderFigureSet(m.data, m.dir).then(
    (paths) => parentPort!.postMessage({ id: m.id, paths }),
    (e: Error) => parentPort!.postMessage({ id: m.id, error: e.stack ?? e.message }),
  );
});
