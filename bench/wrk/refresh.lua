-- wrk script for the refresh benchmark (scripts/bench-identity): each wrk thread owns one
-- connection and one refresh-token chain, refreshing with the token it last received.
-- TOKENS names a file with one starting refresh token per line; MODE is `warden` or `oidc`.
local tokens = {}
local counter = 0
local threads = {}

function setup(thread)
  if #tokens == 0 then
    for line in io.lines(os.getenv("TOKENS")) do table.insert(tokens, line) end
  end
  counter = counter + 1
  thread:set("token", tokens[counter])
  thread:set("mode", os.getenv("MODE"))
  table.insert(threads, thread)
end

function init(args)
  failed = 0
end

function request()
  if mode == "oidc" then
    return wrk.format("POST", "/token", {
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["Authorization"] = "Basic YmVuY2g6YmVuY2gtc2VjcmV0LW5vdC1hLXJlYWwtc2VjcmV0",
    }, "grant_type=refresh_token&refresh_token=" .. token)
  end
  return wrk.format("POST", "/api/v1/auth/refresh", {
    ["Content-Type"] = "application/json",
  }, '{"refresh_token":"' .. token .. '"}')
end

function response(status, headers, body)
  local next = body:match('"refresh_token":"([^"]+)"')
  if status == 200 and next then
    token = next
  else
    failed = failed + 1
  end
end

function done(summary, latency, requests)
  local failed_total = 0
  for _, t in ipairs(threads) do failed_total = failed_total + (t:get("failed") or 0) end
  io.write(string.format("failed refreshes: %d\n", failed_total))
end
