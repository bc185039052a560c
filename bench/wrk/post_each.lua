-- wrk script for the bounded-work benchmarks (sign-ins in scripts/bench-identity, host keys in
-- scripts/bench-hosts): each wrk thread owns one connection and one value (VALUES: a file with
-- one per line: an email, a host key) and POSTs to TARGET again and again. BODY is the JSON
-- body with `{value}` replaced by the thread's value; with BEARER=1 the value is also sent as
-- a bearer token. Counts answers: 200, told to retry (429/503), other.
local values = {}
local counter = 0
local threads = {}

function setup(thread)
  if #values == 0 then
    for line in io.lines(os.getenv("VALUES")) do table.insert(values, line) end
  end
  counter = counter + 1
  thread:set("value", values[counter])
  thread:set("target", os.getenv("TARGET"))
  thread:set("body", (os.getenv("BODY"):gsub("{value}", function() return values[counter] end)))
  thread:set("bearer", os.getenv("BEARER") == "1")
  table.insert(threads, thread)
end

function init(args)
  ok = 0
  busy = 0
  other = 0
end

function request()
  local headers = { ["Content-Type"] = "application/json" }
  if bearer then headers["Authorization"] = "Bearer " .. value end
  return wrk.format("POST", target, headers, body)
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
  io.write(string.format("answers: %d ok, %d told to retry (429/503), %d other\n", o, b, x))
end
