// chat.mjs - examples/chat.c's page in a real browser: Debian's chromium, driven by
// playwright-core (which never downloads a browser of its own).
//
// usage: node tests/browser/chat.mjs CHAT_BINARY [SCREENSHOT_DIR]
//
// Two tabs, each in a browser context of its own (two people), open the chat page and
// pick a name. What one sends, both show, under the sender's name; a message and a name
// with HTML in them are shown as text, and their script never runs. The server is then
// stopped and started again on the same port: both pages reconnect by themselves and
// talk again. Screenshots: chat-ada.png and chat-bob.png in SCREENSHOT_DIR (build by
// default).
// Prints "PASS name" / "FAIL name: detail" per check and "N passed, N failed" last.
import { mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

import { HOST, LAUNCH_ARGS, SCALE, check, restartOn, startServer, summary, waitFor } from "./harness.mjs";

const XSS_TEXT = '<img src=x onerror="window.pwned = (window.pwned || 0) + 1"><script>window.pwned = 1</script>';
const XSS_NAME = "<img src=x onerror=alert('Eve')>"; // 32 characters, the name field's maxlength

/* The message list as the page shows it: [{kind, name, text}] ("" for none). */
const shown = (tab) => tab.$$eval("#messages li", (items) => items.map((li) => ({
  kind: li.className, name: li.querySelector("b")?.textContent ?? "", text: li.querySelector("span")?.textContent ?? "",
})));

/* Waits until tab shows a line matching want (an object of some of its fields); the line or null. */
const line = (tab, want) => waitFor(async () => (await shown(tab)).find((l) =>
  Object.entries(want).every(([k, v]) => l[k] === v)) || null, 5000);

const state = (tab) => tab.textContent("#state");

async function send(tab, text) {
  await tab.fill("#text", text);
  await tab.click("button");
}

/* A tab in a context of its own on the chat page, online, with its name filled in. */
async function openTab(browser, origin, name, sockets, pageErrors) {
  const context = await browser.newContext({ viewport: { width: 640, height: 480 } });
  context.setDefaultTimeout(10000 * SCALE);
  const tab = await context.newPage();
  tab.on("websocket", (ws) => sockets.push(ws.url()));
  tab.on("pageerror", (e) => pageErrors.push(`${name}: ${e}`));
  tab.on("dialog", (d) => { pageErrors.push(`${name}: dialog ${d.message()}`); d.dismiss(); });
  await tab.goto(`${origin}/`);
  await tab.fill("#name", name);
  const online = await waitFor(async () => (await state(tab)) === "online", 5000);
  check(`${name.toLowerCase()}_tab_goes_online`, online, await state(tab));
  return tab;
}

async function main() {
  const binary = resolve(process.argv[2] || "");
  const here = dirname(fileURLToPath(import.meta.url));
  const shots = resolve(process.argv[3] || join(here, "..", "..", "build"));
  mkdirSync(shots, { recursive: true });
  const servers = [];
  let browser;
  try {
    const first = startServer(binary, 0);
    servers.push(first);
    const port = await first.ready;
    if (!check("server_starts", port, first.lines.join(" | "))) return;
    const origin = `http://${HOST}:${port}`;
    browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: LAUNCH_ARGS });
    const sockets = [], pageErrors = [];
    const ada = await openTab(browser, origin, "Ada", sockets, pageErrors);
    const bob = await openTab(browser, origin, "Bob", sockets, pageErrors);
    check("pages_connect_to_ws_chat", sockets.length === 2 && sockets.every((u) => u === `ws://${HOST}:${port}/ws/chat`),
          JSON.stringify(sockets));
    check("ada_sees_bob_join", await line(ada, { kind: "note", text: "someone joined, 2 online" }),
          JSON.stringify(await shown(ada)));

    await send(ada, "Hello Bob, it's Ada");
    check("bob_shows_adas_message_under_her_name", await line(bob, { kind: "", name: "Ada: ", text: "Hello Bob, it's Ada" }),
          JSON.stringify(await shown(bob)));
    check("ada_shows_her_own_message_as_hers", await line(ada, { kind: "mine", name: "Ada: ", text: "Hello Bob, it's Ada" }),
          JSON.stringify(await shown(ada)));
    check("sent_message_clears_the_input", (await ada.inputValue("#text")) === "", await ada.inputValue("#text"));
    await send(bob, "Hi Ada! ✓ «ünïcödé»");
    check("ada_shows_bobs_message", await line(ada, { name: "Bob: ", text: "Hi Ada! ✓ «ünïcödé»" }),
          JSON.stringify(await shown(ada)));

    // HTML in a message and in a name is text: shown as typed, never parsed, never run
    await send(ada, XSS_TEXT);
    await bob.fill("#name", XSS_NAME);
    await send(bob, "<i>not italic</i>");
    check("bob_shows_html_in_a_message_as_text", await line(bob, { name: "Ada: ", text: XSS_TEXT }),
          JSON.stringify(await shown(bob)));
    check("ada_shows_html_in_a_name_as_text", await line(ada, { name: `${XSS_NAME}: `, text: "<i>not italic</i>" }),
          JSON.stringify(await shown(ada)));
    for (const [who, tab] of [["ada", ada], ["bob", bob]]) {
      const dom = await tab.evaluate(() => ({
        elements: [...document.querySelectorAll("#messages img, #messages script, #messages i, #messages li b b")].length,
        pwned: window.pwned ?? null,
      }));
      check(`${who}_made_no_element_from_message_html_and_ran_nothing`, dom.elements === 0 && dom.pwned === null,
            JSON.stringify(dom));
    }
    await bob.fill("#name", "Bob");
    await ada.screenshot({ path: join(shots, "chat-ada.png") });
    await bob.screenshot({ path: join(shots, "chat-bob.png") });

    // a drop: the server stops (close 1001), and a new one starts on the same port
    first.proc.kill("SIGTERM");
    const status = await first.exit;
    check("first_server_exits_0", status === 0, `exit ${status}`);
    const dropped = await waitFor(async () => (await state(ada)) === "reconnecting..." &&
                                              (await state(bob)) === "reconnecting...", 5000);
    check("pages_say_reconnecting_after_the_drop", dropped, `${await state(ada)} / ${await state(bob)}`);
    const second = await restartOn(binary, port);
    if (!check("second_server_starts_on_the_same_port", second, "")) return;
    servers.push(second);
    const back = await waitFor(async () => (await state(ada)) === "online" && (await state(bob)) === "online", 15000);
    check("pages_reconnect_by_themselves", back, `${await state(ada)} / ${await state(bob)}`);
    await send(bob, "Back again");
    check("ada_hears_bob_after_reconnecting", await line(ada, { name: "Bob: ", text: "Back again" }),
          JSON.stringify((await shown(ada)).slice(-3)));
    check("pages_have_no_script_errors_or_dialogs", pageErrors.length === 0, JSON.stringify(pageErrors));
  } catch (e) {
    check("browser_test_runs", false, e.stack || String(e));
  } finally {
    if (browser) await browser.close();
    for (const s of servers) {
      if (s.exited === null) s.proc.kill("SIGTERM");
      const status = await s.exit;
      if (s !== servers[0]) check("second_server_exits_0", status === 0, `exit ${status}`);
    }
    console.log(`  screenshots: ${shots}/chat-ada.png, ${shots}/chat-bob.png`);
    summary();
  }
}

main();
