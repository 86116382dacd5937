-- A request flood for the abuse tests (tests/harness/wrk_flood.py runs it): one request again and
-- again on every connection, until this many answers per wrk thread or wrk's -d, whichever comes
-- first (then it interrupts wrk, so the run ends at once); it counts the statuses, and which 429 answers carried Retry-After and a JSON body.
--
--   wrk -t1 -c50 -d10s -s tests/harness/wrk_flood.lua URL -- METHOD PATH MAX [COOKIE_NAME]
--
-- MAX 0: no limit but -d. With COOKIE_NAME every request carries that cookie with a made-up value
-- (a new random id each time), as a flood posing as returning clients would. POST requests carry
-- a small JSON body. done() prints one line:
--   WRK-FLOOD {"answers":N,"statuses":{"200":n,"429":n,...},"retry_after_429":n,"json_429":n,
--              "errors":{"connect":n,"read":n,"write":n,"timeout":n},"duration_us":n}
local method, path, max, cookie_name = "GET", "/", 0, nil
local own_pid, stopping = nil, false
local headers = {}
local body = nil

-- Globals, so that done() can read them with thread:get().
answers = 0
statuses = {}
retry_after_429 = 0
json_429 = 0

-- wrk's process id: the first field of /proc/self/stat.
local function read_own_pid()
  local f = io.open("/proc/self/stat", "r")
  if not f then
    return nil
  end
  local pid = f:read("*n")
  f:close()
  return pid
end

init = function(args)
  own_pid = read_own_pid()
  method = args[1] or method
  path = args[2] or path
  max = tonumber(args[3] or "0") or 0
  if args[4] and args[4] ~= "" then
    cookie_name = args[4]
  end
  if method == "POST" then
    headers["Content-Type"] = "application/json"
    body = '{"clientId":"flood","requestNum":1}'
  end
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16))
end

local function made_up_id()
  return string.format("%08x%08x%08x%08x", math.random(0, 0x7fffffff), math.random(0, 0x7fffffff),
                       math.random(0, 0x7fffffff), math.random(0, 0x7fffffff))
end

request = function()
  if cookie_name then
    headers["Cookie"] = cookie_name .. "=" .. made_up_id()
  end
  return wrk.format(method, path, headers, body)
end

response = function(status, response_headers, response_body)
  answers = answers + 1
  statuses[tostring(status)] = (statuses[tostring(status)] or 0) + 1
  if status == 429 then
    if response_headers["retry-after"] or response_headers["Retry-After"] then
      retry_after_429 = retry_after_429 + 1
    end
    local content_type = response_headers["content-type"] or response_headers["Content-Type"]
    if content_type == "application/json" and response_body:match('^{"error": ') then
      json_429 = json_429 + 1
    end
  end
  if max > 0 and answers >= max and not stopping then
    stopping = true
    wrk.thread:stop()
    -- wrk's main thread sleeps for -d whatever its threads do; an interrupt (what Ctrl-C sends)
    -- wakes it to report now. It is sent a moment later, from the background, so that it reaches
    -- the main thread rather than this one, which is about to end.
    if own_pid then
      os.execute("(sleep 0.2; kill -INT " .. own_pid .. ") &")
    end
  end
end

local threads = {}

setup = function(thread)
  threads[#threads + 1] = thread
end

done = function(summary, latency, requests)
  local total = {answers = 0, retry_after_429 = 0, json_429 = 0}
  local by_status = {}
  for _, thread in ipairs(threads) do
    for name in pairs(total) do
      total[name] = total[name] + (thread:get(name) or 0)
    end
    for status, count in pairs(thread:get("statuses") or {}) do
      by_status[status] = (by_status[status] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(by_status) do
    parts[#parts + 1] = string.format('"%s":%d', status, count)
  end
  local e = summary.errors
  io.write(string.format(
    'WRK-FLOOD {"answers":%d,"statuses":{%s},"retry_after_429":%d,"json_429":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},"duration_us":%d}\n',
    total.answers, table.concat(parts, ","), total.retry_after_429, total.json_429,
    e.connect, e.read, e.write, e.timeout, summary.duration))
end
