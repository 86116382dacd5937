-- GET /api/load-test?iterations=N, the CPU-bound route: every request keeps one instance's event
-- loop busy for a fixed amount of CPU (a sum of square roots), so one instance serves at most one
-- request at a time and a second instance can double the throughput.
--
--   wrk -t1 -c16 -d10s --latency -s bench/wrk-load-test.lua http://127.0.0.1:3001 -- 350000
--
-- N, after "--", is required: the runner (bench/scaling/) calibrates it so that one request costs
-- about 1 ms of CPU on the machine at hand. Like wrk-whoami.lua, no per-request Lua: init() sets
-- the path once and wrk formats the one request from it. done() comes from wrk-json.lua.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "wrk-json.lua")

init = function(args)
  local iterations = tonumber(args[1] or "")
  if not iterations or iterations < 1 or iterations ~= math.floor(iterations) then
    io.stderr:write("wrk-load-test.lua: give the iterations after '--', e.g. '-- 350000'\n")
    os.exit(2)
  end
  wrk.path = string.format("/api/load-test?iterations=%d", iterations)
end
