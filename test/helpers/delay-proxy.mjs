// A TCP proxy that delays what a worker host sends (issue #20's latency test where the kernel has no sch_netem):
// `node delay-proxy.mjs LISTEN_PORT TARGET_HOST TARGET_PORT DELAY_MS` listens on 127.0.0.1:LISTEN_PORT inside the
// worker's namespace and forwards each connection to TARGET, holding every chunk the worker sends for DELAY_MS before
// passing it on (in order: equal delays fire in order), as netem's egress delay on the host's interface would. What
// the coordinator sends comes back at once. Prints "listening" when ready.
import { createServer, connect } from "node:net";

const [listenPort, host, port, delayMs] = process.argv.slice(2);
const server = createServer((client) => {
  const upstream = connect(Number(port), host);
  client.on("data", (chunk) => setTimeout(() => upstream.write(chunk), Number(delayMs)));
  upstream.on("data", (chunk) => client.write(chunk));
  const end = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on("close", () => setTimeout(end, Number(delayMs)));
  upstream.on("close", end);
  client.on("error", end);
  upstream.on("error", end);
});
server.listen(Number(listenPort), "127.0.0.1", () => console.log("listening"));
