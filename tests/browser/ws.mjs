// ws.mjs - tests/wsapp.c through an independent, strict client: the `ws` package from
// npm (it checks Sec-WebSocket-Accept, that server frames are unmasked, UTF-8 and close
// codes). The valid paths: echo of text, binary and large messages, a message sent in
// fragments, subprotocols, origins, ping, and closes from either side.
//
// usage: node tests/browser/ws.mjs WSAPP_BINARY
// Prints "PASS name" / "FAIL name: detail" per check and "N passed, N failed" last.
import { once } from "node:events";
import { resolve } from "node:path";
import WebSocket from "ws";

import { HOST, SCALE, check, startServer, summary, waitFor } from "./harness.mjs";

/* Resolves to the value of the first of the socket's `event`s, or rejects after ms. */
function next(ws, event, ms = 5000) {
  return Promise.race([
    once(ws, event),
    new Promise((_, reject) => setTimeout(() => reject(new Error(`no ${event} in ${ms * SCALE} ms`)), ms * SCALE)),
  ]);
}

async function open(url, protocols, options) {
  const ws = new WebSocket(url, protocols, options);
  await next(ws, "open");
  return ws;
}

async function closed(ws) {
  const [code, reason] = await next(ws, "close");
  return { code, reason: reason.toString() };
}

/* The on_close code and reason the app saw for the connection tagged `tag`. */
async function onCloseSeen(port, tag) {
  return waitFor(async () => {
    const s = await (await fetch(`http://${HOST}:${port}/stats?tag=${tag}`)).json();
    return s.close_code ? { code: s.close_code, reason: s.close_reason } : null;
  }, 5000);
}

async function echoCases(base, port) {
  const ws = await open(`${base}/ws/echo?tag=node-echo`);
  check("node_ws_no_extension_accepted", ws.extensions === "", `extensions ${JSON.stringify(ws.extensions)}`);
  const messages = [
    ["text", "h\u00e9llo \u{1f600}", false],
    ["binary", Buffer.from([0, 1, 2, 253, 254, 255]), true],
    ["binary_1_mib", Buffer.alloc(1 << 20, 7), true],
    ["text_2_mib", "\u03ba".repeat(1 << 20), false],
  ];
  for (const [name, data, binary] of messages) {
    ws.send(data);
    const [back, isBinary] = await next(ws, "message", 20000);
    const same = binary ? Buffer.compare(back, data) === 0 : back.toString() === data;
    check(`node_ws_echo_${name}`, same && isBinary === binary, `binary ${isBinary}, ${back.length} bytes`);
  }
  ws.send("frag", { fin: false });
  ws.send("mented", { fin: true });
  const [whole] = await next(ws, "message");
  check("node_ws_fragmented_message_echoed_whole", whole.toString() === "fragmented", whole.toString());
  ws.ping(Buffer.from("node ping"));
  const [pong] = await next(ws, "pong");
  check("node_ws_ping_answered_with_its_payload", pong.toString() === "node ping", pong.toString());
  ws.close(4003, "from node");
  const c = await closed(ws);
  check("node_ws_close_answered", c.code === 4003 || c.code === 1000, JSON.stringify(c));
  const seen = await onCloseSeen(port, "node-echo");
  check("node_ws_close_on_close_4003", seen && seen.code === 4003 && seen.reason === "from node", JSON.stringify(seen));
}

async function protocolCases(base) {
  const ws = new WebSocket(`${base}/ws/proto`, ["chat.v2", "chat"]);
  const firstMessage = next(ws, "message"); // it may come in the same packet as the 101
  await next(ws, "open");
  const [first] = await firstMessage;
  check("node_ws_subprotocol_chosen", ws.protocol === "chat.v2" && first.toString() === "chat.v2",
        `${ws.protocol} ${first}`);
  ws.close();
  await closed(ws);
  const server = new WebSocket(`${base}/ws/close?code=4001&reason=bye`);
  const c = await closed(server);
  check("node_ws_server_close_4001_bye", c.code === 4001 && c.reason === "bye", JSON.stringify(c));
}

async function originCases(base) {
  const ok = await open(`${base}/ws/origins`, [], { origin: "http://allowed.example" });
  ok.send("allowed");
  const [back] = await next(ok, "message");
  check("node_ws_origin_allowed", back.toString() === "allowed", back.toString());
  ok.close(1000);
  await closed(ok);
  const refused = new WebSocket(`${base}/ws/origins`, [], { origin: "http://evil.example" });
  refused.on("error", () => {});
  const [, res] = await next(refused, "unexpected-response");
  check("node_ws_origin_refused_403", res.statusCode === 403, `status ${res.statusCode}`);
  res.destroy();
}

async function main() {
  const binary = resolve(process.argv[2] || "");
  const server = startServer(binary, 0, { MW_THREADS: "2" });
  try {
    const port = await server.ready;
    if (!check("node_ws_wsapp_starts", port, server.lines.join(" | "))) return;
    const base = `ws://${HOST}:${port}`;
    for (const cases of [() => echoCases(base, port), () => protocolCases(base), () => originCases(base)]) {
      try {
        await cases();
      } catch (e) {
        check(`node_ws_${cases.toString().match(/\w+Cases/)[0]}`, false, e.message);
      }
    }
    server.proc.kill("SIGTERM");
    const status = await Promise.race([server.exit, new Promise((r) => setTimeout(() => r("timeout"), 10000 * SCALE))]);
    check("node_ws_wsapp_exits_0_after_sigterm", status === 0, `exit ${status}`);
  } finally {
    if (server.exited === null) server.proc.kill("SIGKILL");
    summary();
  }
}

main();
