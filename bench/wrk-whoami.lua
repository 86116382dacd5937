-- GET /api/whoami, the cheap route: what a request costs when the handler does almost nothing,
-- so what is measured is HTTP parsing, the event loop, the kernel's loopback and (through
-- HAProxy) the balancer hop.
--
--   wrk -t1 -c16 -d10s --latency -s bench/wrk-whoami.lua http://127.0.0.1:3001
--
-- No request() or response() function on purpose: wrk then formats one request at start-up and
-- runs no Lua per request, so the load generator stays as cheap as it can be. done() comes from
-- wrk-json.lua: one "WRK-JSON {...}" line with the run's figures.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "wrk-json.lua")

wrk.path = "/api/whoami"
