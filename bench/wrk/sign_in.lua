-- wrk script for the sign-in benchmark (scripts/bench-identity): each wrk thread owns one
-- connection and one account (EMAILS: a file with one email per line), and signs in with it
-- again and again (PASSWORD), so no throttle is involved: what is measured is the bounded
-- argon2id work. Counts answers by status.
local emails = {}
local counter = 0
local threads = {}

function setup(thread)
  if #emails == 0 then
    for line in io.lines(os.getenv("EMAILS")) do table.insert(emails, line) end
  end
  counter = counter + 1
  thread:set("email", emails[counter])
  thread:set("password", os.getenv("PASSWORD"))
  table.insert(threads, thread)
end

function init(args)
  ok = 0
  busy = 0
  other = 0
end

function request()
  return wrk.format("POST", "/api/v1/auth/sign-in", {
    ["Content-Type"] = "application/json",
  }, '{"email":"' .. email .. '","password":"' .. password .. '"}')
end

function response(status, headers, body)
  if status == 200 then ok = ok + 1
  elseif status == 503 then busy = busy + 1
  else other = other + 1 end
end

function done(summary, latency, requests)
  local o, b, x = 0, 0, 0
  for _, t in ipairs(threads) do
    o = o + (t:get("ok") or 0); b = b + (t:get("busy") or 0); x = x + (t:get("other") or 0)
  end
  io.write(string.format("sign-ins: %d ok, %d told to retry (503), %d other\n", o, b, x))
end
