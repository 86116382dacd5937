-- Prints one wrk run's summary as a single JSON line, prefixed "WRK-JSON ", after wrk's own text.
-- Reading numbers from this line is sturdier than parsing wrk's human output, whose units change
-- with magnitude (us, ms, s; k, M). Latencies are in microseconds, as wrk records them.
--
-- No request() or response() function is defined on purpose: either one makes wrk run Lua for
-- every request and would slow the load generator down. wrk itself counts every response with a
-- status of 400 or more in errors.status; the runner checks each server's answer (200, JSON)
-- before it measures anything.

-- CPU time wrk itself has used so far (utime + stime of all its threads, in clock ticks), or -1.
-- It tells whether wrk was the bottleneck: one wrk thread at 100% measures wrk, not the server.
local function own_cpu_ticks()
  local f = io.open("/proc/self/stat", "r")
  if not f then
    return -1
  end
  local stat = f:read("*l")
  f:close()
  -- Fields counted after the ")" that ends the command name: state is the 1st, utime the 12th.
  local fields = {}
  for field in (stat:match("%) (.*)$") or ""):gmatch("%S+") do
    fields[#fields + 1] = field
  end
  if #fields < 13 then
    return -1
  end
  return tonumber(fields[12]) + tonumber(fields[13])
end

done = function(summary, latency, requests)
  local e = summary.errors
  local seconds = summary.duration / 1e6
  local rps = 0
  if seconds > 0 then
    rps = summary.requests / seconds
  end
  io.write(string.format(
    'WRK-JSON {"requests":%d,"duration_us":%d,"bytes":%d,"rps":%.2f,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.1f,"stdev":%.1f,"p50":%d,"p75":%d,"p90":%d,"p95":%d,' ..
    '"p99":%d,"p99_9":%d,"max":%d},"client_cpu_ticks":%d}\n',
    summary.requests, summary.duration, summary.bytes, rps,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.stdev,
    latency:percentile(50), latency:percentile(75), latency:percentile(90),
    latency:percentile(95), latency:percentile(99), latency:percentile(99.9), latency.max,
    own_cpu_ticks()))
end
