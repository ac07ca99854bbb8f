// Container health check: exits 0 when this container's snn-coord or snn-worker answers GET /metrics.
// Both roles share one image, so it tries the coordinator's default port (9464) and the worker's (9465); set
// HEALTHCHECK_PORTS (comma-separated) when a role runs with another --metrics-port. Node's fetch, no curl needed.
const ports = (process.env.HEALTHCHECK_PORTS || "9464,9465").split(",").map((p) => p.trim()).filter(Boolean);

const probe = async (port) => {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5000) });
  await res.arrayBuffer();
  if (!res.ok) throw new Error(`port ${port}: HTTP ${res.status}`);
  return port;
};

try {
  await Promise.any(ports.map(probe));
  process.exit(0);
} catch {
  console.error(`no /metrics answered on port(s) ${ports.join(", ")}`);
  process.exit(1);
}
