// harness.mjs - what the browser tests share: checks and their tally, a microweb server
// started on a port (0: a free one) and known ready once it says where it listens, and
// polling instead of sleeping.
import { spawn } from "node:child_process";

export const HOST = "127.0.0.1";
export const SCALE = Number(process.env.E2E_TIMEOUT_SCALE) || 1;
export const LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                            "--disable-background-networking", "--disable-component-update", "--disable-sync"];

const tally = { passed: 0, failed: 0 };

/* Prints "PASS name" or "FAIL name: detail" and counts it; returns ok. */
export function check(name, ok, detail = "") {
  if (ok) {
    tally.passed++;
    console.log(`PASS ${name}`);
  } else {
    tally.failed++;
    console.log(`FAIL ${name}: ${detail || "condition false"}`);
  }
  return ok;
}

/* The last line, "N passed, N failed", and the exit status it calls for. */
export function summary() {
  console.log(`${tally.passed} passed, ${tally.failed} failed`);
  process.exitCode = tally.failed ? 1 : 0;
}

/* Polls fn until it returns something other than null (or throws), for up to ms. */
export async function waitFor(fn, ms) {
  const until = Date.now() + ms * SCALE;
  for (;;) {
    const v = await fn();
    if (v !== null && v !== undefined && v !== false) return v;
    if (Date.now() > until) return null;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/* A microweb binary on `port` with the access log on and `env` added; server.ready
   resolves to the port it listens on, server.lines holds its stderr lines. */
export function startServer(binary, port, env = {}) {
  const proc = spawn(binary, [], {
    env: { ...process.env, ...env, HOST, PORT: String(port), MW_ACCESS_LOG: "1" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  const server = { proc, lines: [], exited: null };
  let partial = "";
  proc.stderr.on("data", (data) => {
    const text = partial + data.toString();
    const lines = text.split("\n");
    partial = lines.pop();
    server.lines.push(...lines);
  });
  server.exit = new Promise((res) => proc.on("exit", (code, sig) => res((server.exited = code ?? sig))));
  server.ready = waitFor(() => {
    for (const line of server.lines) {
      const m = /microweb: listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(line);
      if (m) return Number(m[1]);
    }
    if (server.exited !== null) throw new Error(`exited ${server.exited}: ${server.lines.join(" | ")}`);
    return null;
  }, 10000);
  return server;
}

/* Starts the server on port, again and again until the port is free (after a stop). */
export async function restartOn(binary, port) {
  return waitFor(async () => {
    const s = startServer(binary, port);
    try {
      if (await s.ready) return s;
    } catch {
      /* the port is not free yet: try again */
    }
    if (s.exited === null) s.proc.kill("SIGTERM");
    await s.exit;
    return null;
  }, 5000);
}
