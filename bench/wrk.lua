-- wrk.lua - the request wrk sends in bench/run.py, chosen by script arguments
-- (after "--" on wrk's command line), and one summary line for the runner.
--   post=N   POST the path with a body of N bytes ('x'), Content-Type application/octet-stream
--   close    send "Connection: close" (a new connection per request)
--   note=N   POST a JSON note of N bytes ({"title", "body", "tags"}, as examples/notes.c
--            takes it), Content-Type application/json
-- Only wrk.method/body/headers are set, so wrk formats the request once per thread.

function init(args)
  for _, arg in ipairs(args) do
    local n = arg:match("^post=(%d+)$")
    if n then
      wrk.method = "POST"
      wrk.body = string.rep("x", tonumber(n))
      wrk.headers["Content-Type"] = "application/octet-stream"
    elseif arg:match("^note=(%d+)$") then
      local head = '{"title":"A note of the bench","tags":["bench","wrk"],"body":"'
      local size = tonumber(arg:match("^note=(%d+)$"))
      wrk.method = "POST"
      wrk.body = head .. string.rep("x", size - #head - 2) .. '"}'
      wrk.headers["Content-Type"] = "application/json"
    elseif arg == "close" then
      wrk.headers["Connection"] = "close"
    else
      error("wrk.lua: unknown argument " .. arg)
    end
  end
end

-- "BENCH {json}": totals and latency percentiles (microseconds) for bench/run.py
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"duration_us":%d,"requests":%d,"bytes":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"p50_us":%d,"p99_us":%d,"mean_us":%.1f,"max_us":%d}\n',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean, latency.max))
end
