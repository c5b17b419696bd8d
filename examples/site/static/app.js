// app.js - the site's script, served by mw_static: it says it ran, then shows the
// server's clock (GET /api/time) in the reader's local time.
const status = document.getElementById("js-status");
status.textContent = "script loaded";
fetch("/api/time")
  .then((r) => r.json())
  .then((t) => {
    status.textContent = `script loaded; the server's clock says ${new Date(t.unix * 1000).toLocaleTimeString()}`;
  })
  .catch(() => {
    status.textContent = "script loaded; /api/time did not answer";
  });
