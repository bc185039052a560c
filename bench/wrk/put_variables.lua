-- wrk script for scripts/bench-rotation: PUTs workspace variables with distinct names
-- (V<thread>_<n>) to WS (a workspace id) as TOKEN, to fill a database with sealed values.
local threads = {}
local count = 0

function setup(thread)
  count = count + 1
  thread:set("id", count)
  table.insert(threads, thread)
end

function init(args)
  n = 0
  ws = os.getenv("WS")
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  n = n + 1
  return wrk.format("PUT", "/api/v1/workspaces/" .. ws .. "/variables/V" .. id .. "_" .. n,
    nil, '{"value":"a sealed value of about fifty bytes, number ' .. n .. '"}')
end
