// events.mjs - examples/stream.c's page in a real browser: Debian's chromium, driven by
// playwright-core (which never downloads a browser of its own).
//
// usage: node tests/browser/events.mjs STREAM_BINARY [SCREENSHOT.png]
//
// The page's EventSource receives the ticks in order. The server is then stopped
// (SIGTERM: the stream ends cleanly) and started again on the same port: the browser
// reconnects by itself with Last-Event-ID, and the new server goes on after that id,
// so the page shows every tick once, none twice. When the last tick is sent the
// stream ends; the browser reconnects again with Last-Event-ID and gets nothing more.
// A screenshot of the page is saved (build/browser-events.png by default).
// Prints "PASS name" / "FAIL name: detail" per check and "N passed, N failed" last.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

import { HOST, LAUNCH_ARGS, check, restartOn, startServer, summary, waitFor } from "./harness.mjs";

const EVERY_MS = 150;
const COUNT = 8;
const TARGET = `/events?every_ms=${EVERY_MS}&count=${COUNT}`;

/* The server's access log lines for the event stream: [bytes, ...]. */
function streamLines(server) {
  const re = new RegExp(` 127\\.0\\.0\\.1:\\d+ GET ${TARGET.replace(/[?]/g, "\\?")} 200 (\\d+) \\d+us$`);
  return server.lines.map((l) => re.exec(l)).filter(Boolean).map((m) => Number(m[1]));
}

const ticksShown = (page) => page.$$eval("#events li", (items) => items.map((li) => li.textContent));

async function main() {
  const binary = resolve(process.argv[2] || "");
  const here = dirname(fileURLToPath(import.meta.url));
  const shot = resolve(process.argv[3] || join(here, "..", "..", "build", "browser-events.png"));
  const profile = mkdtempSync(join(tmpdir(), "mw-chromium-"));
  const servers = [];
  let context;
  try {
    const first = startServer(binary, 0);
    servers.push(first);
    const port = await first.ready;
    if (!check("server_starts", port, first.lines.join(" | "))) return;
    context = await chromium.launchPersistentContext(profile, {
      executablePath: "/usr/bin/chromium",
      headless: true,
      args: LAUNCH_ARGS,
      viewport: { width: 720, height: 540 },
    });
    const page = context.pages()[0] || (await context.newPage());
    await page.goto(`http://${HOST}:${port}/?every_ms=${EVERY_MS}&count=${COUNT}`);

    const early = await waitFor(async () => ((await ticksShown(page)).length >= 3 ? ticksShown(page) : null), 5000);
    check("page_shows_ticks_as_they_come", early, "ticks: " + JSON.stringify(await ticksShown(page)));
    check("page_says_open", (await page.textContent("#state")) === "open", await page.textContent("#state"));

    first.proc.kill("SIGTERM"); // the stream ends cleanly; the browser will reconnect
    const status = await first.exit;
    check("first_server_exits_0", status === 0, `exit ${status}`);
    const reconnecting = await waitFor(async () => (await page.textContent("#state")) === "reconnecting...", 5000);
    check("page_sees_the_stream_end_and_waits_to_reconnect", reconnecting, await page.textContent("#state"));
    const seenBefore = (await ticksShown(page)).length; // all the first server sent: its stream has ended

    const second = await restartOn(binary, port);
    if (!check("second_server_starts_on_the_same_port", second, "")) return;
    servers.push(second);

    const all = await waitFor(async () => ((await ticksShown(page)).length >= COUNT ? ticksShown(page) : null), 15000);
    const want = Array.from({ length: COUNT }, (_, i) => `tick ${i + 1} (id ${i + 1})`);
    const shown = await ticksShown(page);
    console.log(`  ${seenBefore} ticks from the first server, ${shown.length - seenBefore} from the second`);
    check("page_shows_every_tick_once_in_order", JSON.stringify(shown) === JSON.stringify(want) && all,
          JSON.stringify(shown));
    const resumed = streamLines(second);
    // each tick k < 10 is "event: tick\nid: k\ndata: k\n\n", 27 bytes
    check("second_server_sent_only_the_ticks_after_last_event_id",
          seenBefore > 0 && seenBefore < COUNT && resumed[0] === 27 * (COUNT - seenBefore),
          `stream lines ${JSON.stringify(resumed)} (bytes), ${seenBefore} ticks before the restart`);
    await page.screenshot({ path: shot });
    console.log(`  screenshot: ${shot}`);

    // the stream ended after tick COUNT: the browser reconnects with Last-Event-ID
    // COUNT and the server ends that stream at once, with no event
    const again = await waitFor(() => (streamLines(second).length >= 2 ? streamLines(second) : null), 10000);
    check("reconnect_after_the_last_tick_gets_no_event", again && again[1] === 0,
          `stream lines ${JSON.stringify(streamLines(second))}`);
    check("page_still_shows_each_tick_once", JSON.stringify(await ticksShown(page)) === JSON.stringify(want),
          JSON.stringify(await ticksShown(page)));
  } catch (e) {
    check("browser_test_runs", false, e.stack || String(e));
  } finally {
    if (context) await context.close();
    for (const s of servers) {
      if (s.exited === null) s.proc.kill("SIGTERM");
      const status = await s.exit;
      if (s !== servers[0]) check("second_server_exits_0", status === 0, `exit ${status}`);
    }
    rmSync(profile, { recursive: true, force: true });
    summary();
  }
}

main();
