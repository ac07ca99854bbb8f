/** Worker-thread entry: renders figure sets off the coordinator's event loop, one at a time. */
import { FigureData } from "../figure-data.js";
import { serveRpc } from "../../platform/thread-rpc.js";
import { renderFigureSet } from "./render.js";

serveRpc<undefined, { data: FigureData; dir: string }, string[]>((m) => renderFigureSet(m.data, m.dir));
