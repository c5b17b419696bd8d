// site.mjs - examples/site.c in a real browser: Debian's chromium, driven by
// playwright-core (which never downloads a browser of its own).
//
// usage: node tests/browser/site.mjs SITE_BINARY [SCREENSHOT_DIR]
//
// A page server of this script's own (127.0.0.1, a free port) serves cors.html and
// evil.html; the site runs with CORS_ORIGIN set to that page server's origin
// http://127.0.0.1:PAGEPORT, which is another origin than the site's but the same site
// (a site ignores ports), so the site's SameSite=Lax cookie goes with a fetch that
// includes credentials. The same page server reached as http://localhost:PAGEPORT is
// another origin, not allowed, and another site.
//
// CORS: the page's fetch() reads /api/time without and with the session cookie, with
// an allowed custom header (a preflight) and not with one the site does not allow, and
// reads a 404's JSON; from the refused origin the fetch fails. CSRF: a form on the other
// site that posts the login is refused (403), the site's own form logs in. Static files:
// the page's stylesheet (gzipped), script and logo come from /static and take effect.
// Screenshots: site-home.png, site-static.png, site-logged-in.png and site-cors.png in
// SCREENSHOT_DIR (build by default).
// Prints "PASS name" / "FAIL name: detail" per check and "N passed, N failed" last.
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

import { HOST, LAUNCH_ARGS, SCALE, check, startServer, summary, waitFor } from "./harness.mjs";

const SECRET_KEY = "site-browser-key-0123456789abcde"; // 32 bytes

/* cors.html: probe(name, path, init) fetches path on the site, keeps the outcome in
   window.results and shows it as a line of the list. */
function corsPage(siteOrigin) {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>CORS probes</title>
<style>body{font:15px system-ui,sans-serif;margin:2em}li{margin:.3em 0;font-family:monospace}
.ok{color:#070}.failed{color:#b00020}</style></head>
<body>
<h1>CORS probes against ${siteOrigin}</h1>
<p>This page: <span id="origin"></span></p>
<ul id="results"></ul>
<script>
const SITE = ${JSON.stringify(siteOrigin)};
document.getElementById("origin").textContent = location.origin;
window.results = {};
window.probe = async (name, path, init) => {
  let result;
  try {
    const r = await fetch(SITE + path, init || {});
    const text = await r.text();
    let json = null;
    try { json = JSON.parse(text); } catch { /* not JSON: text tells */ }
    result = { ok: r.ok, status: r.status, json, text };
  } catch (e) {
    result = { error: e.name, message: e.message };
  }
  window.results[name] = result;
  const li = document.createElement("li");
  li.className = result.error ? "failed" : "ok";
  li.textContent = name + ": " + (result.error ? result.error + ": " + result.message
                                              : "HTTP " + result.status + " " + result.text.trim());
  document.getElementById("results").appendChild(li);
  return result;
};
</script>
</body></html>
`;
}

/* evil.html: a form on another site that posts the login to the site. */
function evilPage(siteOrigin) {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>another site</title></head>
<body>
<h1>Win a prize</h1>
<form method="post" action="${siteOrigin}/login">
<input type="hidden" name="user" value="demo">
<input type="hidden" name="password" value="demo">
<button id="claim">Claim</button>
</form>
</body></html>
`;
}

/* The test pages' server on 127.0.0.1, a free port; pages() gives {path: html}. */
async function startPageServer(pages) {
  const server = createServer((req, res) => {
    const html = pages()[new URL(req.url, "http://x").pathname];
    res.writeHead(html ? 200 : 404, { "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store" });
    res.end(html || "not found\n");
  });
  await new Promise((res, rej) => server.once("error", rej).listen(0, HOST, res));
  return server;
}

/* Loads evil.html from pageOrigin in tab and clicks its button: the answer to the login post. */
async function postEvilForm(tab, pageOrigin, siteOrigin) {
  await tab.goto(`${pageOrigin}/evil.html`);
  const [resp] = await Promise.all([
    tab.waitForResponse((rsp) => rsp.url() === `${siteOrigin}/login`),
    tab.click("#claim"),
  ]);
  await tab.waitForURL(`${siteOrigin}/login`);
  return { status: resp.status(), body: (await tab.locator("body").textContent()) || "",
           setCookie: await resp.headerValue("set-cookie") };
}

const STATIC_FILES = ["/static/style.css", "/static/app.js", "/static/logo.png"];

/* The page in tab came with its stylesheet, script and logo from /static: each answered
   200 or 304, and each took effect. Takes the screenshot shotPath once the script has
   shown the server's clock. */
async function checkStaticFiles(tab, answers, pageErrors, shotPath) {
  const paths = await waitFor(() => {
    const seen = answers.map((r) => new URL(r.url()).pathname);
    return STATIC_FILES.every((f) => seen.includes(f)) ? seen : null;
  }, 5000);
  check("page_requests_its_stylesheet_script_and_logo", paths, show(answers.map((r) => r.url())));
  check("every_static_request_is_200_or_304", answers.length > 0 &&
        answers.every((r) => r.status() === 200 || r.status() === 304),
        show(answers.map((r) => `${r.url()} ${r.status()}`)));
  const css = answers.find((r) => r.url().endsWith("/static/style.css"));
  check("stylesheet_comes_gzipped_from_its_sibling", css && (await css.headerValue("content-encoding")) === "gzip" &&
        (await css.headerValue("vary")) === "Accept-Encoding", css ? show(await css.allHeaders()) : "no answer");
  // style.css: h1 {color: #1f5fa8}, header {display: flex}
  const styled = await tab.evaluate(() => {
    const style = (selector) => document.querySelector(selector) && getComputedStyle(document.querySelector(selector));
    return { h1: style("h1")?.color, header: style("header")?.display };
  });
  check("stylesheet_is_applied", styled.h1 === "rgb(31, 95, 168)" && styled.header === "flex", show(styled));
  const jsStatus = () => tab.evaluate(() => document.getElementById("js-status")?.textContent ?? null);
  const clock = await waitFor(async () => {
    const text = (await jsStatus()) || "";
    return /^script loaded; the server's clock says \S/.test(text) ? text : null;
  }, 5000);
  check("script_ran_and_showed_the_server_clock", clock, show(await jsStatus()));
  const logo = await tab.evaluate(() => {
    const img = document.querySelector('header img[src="/static/logo.png"]');
    return img && { complete: img.complete, width: img.naturalWidth, height: img.naturalHeight, alt: img.alt };
  });
  check("logo_image_is_loaded", logo && logo.complete && logo.width > 0 && logo.height > 0 && logo.alt, show(logo));
  check("page_has_no_script_errors", pageErrors.length === 0, show(pageErrors));
  await tab.screenshot({ path: shotPath });
}

const probe = (page, name, path, init) => page.evaluate(([n, p, i]) => window.probe(n, p, i), [name, path, init]);
const show = (r) => JSON.stringify(r);

async function main() {
  const binary = resolve(process.argv[2] || "");
  const here = dirname(fileURLToPath(import.meta.url));
  const shots = resolve(process.argv[3] || join(here, "..", "..", "build"));
  mkdirSync(shots, { recursive: true });
  const profile = mkdtempSync(join(tmpdir(), "mw-chromium-"));
  let pageServer, site, context;
  try {
    let siteOrigin = "";
    const pages = () => ({ "/cors.html": corsPage(siteOrigin), "/evil.html": evilPage(siteOrigin) });
    pageServer = await startPageServer(pages);
    const pagePort = pageServer.address().port;
    const pageOrigin = `http://${HOST}:${pagePort}`;
    const otherOrigin = `http://localhost:${pagePort}`;
    site = startServer(binary, 0, { MW_SECRET_KEY: SECRET_KEY, CORS_ORIGIN: pageOrigin,
                                    STATIC_DIR: join(here, "..", "..", "examples", "site", "static") });
    const sitePort = await site.ready;
    if (!check("site_starts", sitePort, site.lines.join(" | "))) return;
    siteOrigin = `http://${HOST}:${sitePort}`;

    context = await chromium.launchPersistentContext(profile, {
      executablePath: "/usr/bin/chromium",
      headless: true,
      args: LAUNCH_ARGS,
      viewport: { width: 900, height: 600 },
    });
    context.setDefaultTimeout(10000 * SCALE);
    const corsTab = context.pages()[0] || (await context.newPage());
    await corsTab.goto(`${pageOrigin}/cors.html`);

    // 2a: a simple GET, no credentials
    let r = await probe(corsTab, "simple GET /api/time", "/api/time");
    check("cors_simple_get_is_readable_without_a_user",
          r.ok && r.status === 200 && r.json && Number.isInteger(r.json.unix) && r.json.user === null, show(r));

    // 3b and the screenshots: the site's own form, in another tab of the same browser
    const siteTab = await context.newPage();
    const staticAnswers = [], pageErrors = [];
    siteTab.on("response", (resp) => {
      if (new URL(resp.url()).pathname.startsWith("/static/")) staticAnswers.push(resp);
    });
    siteTab.on("pageerror", (e) => pageErrors.push(String(e)));
    await siteTab.goto(`${siteOrigin}/`);
    await checkStaticFiles(siteTab, staticAnswers, pageErrors, join(shots, "site-static.png"));
    const form = siteTab.locator('form[action="/login"]');
    check("home_shows_the_login_form", (await form.count()) === 1 &&
          (await form.locator('input[name="csrf_token"]').getAttribute("value") || "").length > 0,
          await siteTab.content());
    await siteTab.screenshot({ path: join(shots, "site-home.png") });
    await siteTab.fill('input[name="user"]', "demo");
    await siteTab.fill('input[name="password"]', "demo");
    const [landed] = await Promise.all([
      siteTab.waitForResponse((resp) => resp.url() === `${siteOrigin}/me`),
      siteTab.click("button"),
    ]);
    await siteTab.waitForURL(`${siteOrigin}/me`);
    const meText = await siteTab.locator("body").textContent();
    let me = null;
    try {
      me = JSON.parse(meText);
    } catch { /* me stays null: the check below says what was shown */ }
    check("same_origin_login_form_lands_on_me_as_demo", landed.status() === 200 && me && me.user === "demo",
          `${landed.status()} ${meText}`);
    const cookie = (await context.cookies(siteOrigin)).find((c) => c.name === "session");
    check("session_cookie_is_httponly_and_lax", cookie && cookie.httpOnly && cookie.sameSite === "Lax", show(cookie));
    const logBefore = site.lines.length;
    await siteTab.goto(`${siteOrigin}/`);
    // Cache-Control: no-cache, so the browser asks again with the ETag it holds: the
    // access log (the wire; the page's own view may show a cached 200) has three 304s
    const revalidated = () => STATIC_FILES.every((f) => site.lines.slice(logBefore).some((l) =>
      l.includes(` GET ${f} 304 `)));
    check("static_files_are_revalidated_with_304", await waitFor(revalidated, 5000),
          `access log: ${site.lines.slice(logBefore).join(" | ")}`);
    check("every_static_request_is_still_200_or_304",
          staticAnswers.every((r) => r.status() === 200 || r.status() === 304),
          show(staticAnswers.map((r) => `${r.url()} ${r.status()}`)));
    const loggedIn = (await siteTab.locator("p", { hasText: "Logged in as" }).textContent()) || "";
    check("home_says_logged_in_as_demo", loggedIn.startsWith("Logged in as demo") &&
          (await siteTab.locator("strong").textContent()) === "demo" &&
          (await siteTab.locator('form[action="/logout"]').count()) === 1, loggedIn);
    await siteTab.screenshot({ path: join(shots, "site-logged-in.png") });

    // 2b: the session cookie goes along with credentials: 'include' only
    r = await probe(corsTab, "GET /api/time, credentials include", "/api/time", { credentials: "include" });
    check("cors_with_credentials_sees_the_user", r.ok && r.json && r.json.user === "demo", show(r));
    r = await probe(corsTab, "GET /api/time, credentials omit", "/api/time", { credentials: "omit" });
    check("cors_without_credentials_sees_no_user", r.ok && r.json && r.json.user === null, show(r));

    // 2c: a header beyond the safelisted ones needs the preflight's approval
    const preflights = () => site.lines.filter((l) => / OPTIONS \/api\/time 204 /.test(l)).length;
    const before = preflights();
    r = await probe(corsTab, "GET /api/time, X-Requested-With", "/api/time",
                    { credentials: "include", headers: { "X-Requested-With": "fetch" } });
    check("cors_allowed_header_passes_the_preflight", r.ok && r.json && r.json.user === "demo", show(r));
    check("allowed_header_was_preflighted", await waitFor(() => preflights() > before, 5000),
          `access log: ${site.lines.slice(-4).join(" | ")}`);
    const gets = () => site.lines.filter((l) => / GET \/api\/time /.test(l)).length;
    const [getsBefore, preflightsBefore] = [gets(), preflights()];
    r = await probe(corsTab, "GET /api/time, X-Other", "/api/time", { headers: { "X-Other": "1" } });
    check("cors_header_not_allowed_fails_in_the_page", r.error === "TypeError", show(r));
    const refusedPreflight = await waitFor(() => preflights() > preflightsBefore, 5000);
    check("header_not_allowed_is_preflighted_and_never_sent", refusedPreflight && gets() === getsBefore,
          `access log: ${site.lines.slice(-4).join(" | ")}`);

    // 2d: an error answer is readable too
    r = await probe(corsTab, "GET /api/nowhere", "/api/nowhere");
    check("cors_404_is_readable_with_its_json", r.status === 404 && r.json && r.json.status === 404, show(r));
    await corsTab.screenshot({ path: join(shots, "site-cors.png"), fullPage: true });

    // 2e: the same page from an origin the site does not list
    const otherTab = await context.newPage();
    await otherTab.goto(`${otherOrigin}/cors.html`);
    r = await probe(otherTab, "GET /api/time from a refused origin", "/api/time");
    check("cors_refused_origin_fails_in_the_page", r.error === "TypeError", show(r));

    // 3a: another site's form posts the login: refused, and no session is set
    let refused = await postEvilForm(otherTab, otherOrigin, siteOrigin);
    check("cross_site_form_post_is_403", refused.status === 403, show(refused));
    check("cross_site_form_post_shows_the_refusal", refused.body.includes("cross-origin request refused"),
          refused.body);
    check("cross_site_form_post_sets_no_cookie", refused.setCookie === null, show(refused));
    // the CORS origin is the same site but another origin, and CORS covers /api only
    refused = await postEvilForm(otherTab, pageOrigin, siteOrigin);
    check("same_site_cross_origin_form_post_is_403", refused.status === 403 &&
          refused.body.includes("cross-origin request refused") && refused.setCookie === null, show(refused));
  } catch (e) {
    check("browser_test_runs", false, e.stack || String(e));
  } finally {
    if (context) await context.close();
    if (site) {
      if (site.exited === null) site.proc.kill("SIGTERM");
      const status = await site.exit;
      check("site_exits_0", status === 0, `exit ${status}`);
    }
    if (pageServer) {
      pageServer.closeAllConnections();
      await new Promise((res) => pageServer.close(res));
    }
    rmSync(profile, { recursive: true, force: true });
    console.log(`  screenshots: ${shots}/site-{home,static,logged-in,cors}.png`);
    summary();
  }
}

main();
