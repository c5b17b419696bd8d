-- wrk.lua - bench/tfb.py's requests: the URL's GET, DEPTH at a time on each connection
-- (HTTP pipelining, as TechEmpower's plaintext test sends 16) when the script argument
-- after "--" is DEPTH; then one summary line for the runner, as bench/wrk.lua writes it.

local batch

function init(args)
  local depth = tonumber(args[1] or "1")
  local one = wrk.format("GET")
  batch = string.rep(one, depth)
end

function request()
  return batch
end

-- "BENCH {json}": totals and latency percentiles (microseconds) for bench/tfb.py
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
