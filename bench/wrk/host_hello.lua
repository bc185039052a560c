-- wrk script for the host-key benchmark (scripts/bench-hosts): each wrk thread owns one
-- connection and one host key (KEYS: a file with one `whk_…` key per line) and says hello
-- with it again and again, so every request is one PBKDF2 key check. Counts answers by status.
local keys = {}
local counter = 0
local threads = {}

function setup(thread)
  if #keys == 0 then
    for line in io.lines(os.getenv("KEYS")) do table.insert(keys, line) end
  end
  counter = counter + 1
  thread:set("key", keys[counter])
  table.insert(threads, thread)
end

function init(args)
  ok = 0
  busy = 0
  other = 0
end

function request()
  return wrk.format("POST", "/api/v1/agent/hello", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. key,
  }, '{"hostname":"bench","os":"Debian 12","agent_version":"0.1.0"}')
end

function response(status, headers, body)
  if status == 200 then ok = ok + 1
  elseif status == 429 or status == 503 then busy = busy + 1
  else other = other + 1 end
end

function done(summary, latency, requests)
  local o, b, x = 0, 0, 0
  for _, t in ipairs(threads) do
    o = o + (t:get("ok") or 0); b = b + (t:get("busy") or 0); x = x + (t:get("other") or 0)
  end
  io.write(string.format("hellos: %d ok, %d told to retry, %d other\n", o, b, x))
end
