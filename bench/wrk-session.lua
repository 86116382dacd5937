-- POST /api/session with a session kept per client: each of wrk's connections behaves like a
-- browser that got its session cookie (tandem_session) and HAProxy's stickiness cookie
-- (tandem_instance) on its first answer and sends both with every later request.
--
--   wrk -t1 -c16 -d10s --latency -s bench/wrk-session.lua http://127.0.0.1:8080 [-- COOKIE_NAME]
--
-- COOKIE_NAME is HAProxy's stickiness cookie (default tandem_instance, haproxy/defaults.yml).
--
-- wrk's Lua sees requests and answers, not connections, so the sessions live in a pool: request()
-- takes the session that has waited longest (or none: the server then makes a new one), and
-- response() puts the answer's session back. As no connection has more than one request in
-- flight, this makes exactly as many sessions as connections, each used by one request at a time,
-- with its request count going up by one per request: the load of that many clients.
-- The session id comes back in X-Session-Id and the instance in X-Container-Id (the stickiness
-- cookie's value is the instance id), which also checks stickiness: a session answered by another
-- instance than the one that made it is counted as a sticky miss.
--
-- This script runs Lua for every request and every answer, unlike the GET scripts, so wrk costs
-- more CPU here. done() prints wrk-json.lua's "WRK-JSON {...}" line, then
-- "WRK-SESSION {"sessions":S,"sticky_misses":M,"without_session":W,"not_200":N}".
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "wrk-json.lua")
local json_done = done

local instance_cookie = "tandem_instance"
local pool = {}        -- sessions waiting for their next request, oldest first
local first, last = 1, 0
local by_id = {}       -- session id -> {cookie, container, count}
sessions = 0           -- globals, so that done() can read them with thread:get()
sticky_misses = 0
without_session = 0
not_200 = 0

local headers = {["Content-Type"] = "application/json"}

init = function(args)
  if args[1] and args[1] ~= "" then
    instance_cookie = args[1]
  end
end

request = function()
  local session = nil
  if first <= last then
    session = pool[first]
    pool[first] = nil
    first = first + 1
  end
  local count = 1
  if session then
    count = session.count + 1
    headers["Cookie"] = session.cookie
  else
    headers["Cookie"] = nil
  end
  return wrk.format("POST", "/api/session", headers,
                    string.format('{"clientId":"wrk","requestNum":%d}', count))
end

-- HAProxy sends header names in lower case, tandem-server in its own case.
local function header(all, name, lower)
  return all[name] or all[lower]
end

response = function(status, response_headers, body)
  if status ~= 200 then
    not_200 = not_200 + 1
  end
  local id = header(response_headers, "X-Session-Id", "x-session-id")
  local container = header(response_headers, "X-Container-Id", "x-container-id")
  if not id or not container then
    without_session = without_session + 1
    return
  end
  local session = by_id[id]
  if session then
    session.count = session.count + 1
    if session.container ~= container then
      sticky_misses = sticky_misses + 1
    end
  else
    session = {
      cookie = string.format("tandem_session=%s; %s=%s", id, instance_cookie, container),
      container = container,
      count = 1,
    }
    by_id[id] = session
    sessions = sessions + 1
  end
  last = last + 1
  pool[last] = session
end

local threads = {}

setup = function(thread)
  threads[#threads + 1] = thread
end

done = function(summary, latency, requests)
  json_done(summary, latency, requests)
  local totals = {sessions = 0, sticky_misses = 0, without_session = 0, not_200 = 0}
  for _, thread in ipairs(threads) do
    for name in pairs(totals) do
      totals[name] = totals[name] + (thread:get(name) or 0)
    end
  end
  io.write(string.format(
    'WRK-SESSION {"sessions":%d,"sticky_misses":%d,"without_session":%d,"not_200":%d}\n',
    totals.sessions, totals.sticky_misses, totals.without_session, totals.not_200))
end
