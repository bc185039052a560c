-- wrk script for scripts/bench-scim: each request looks up one of USERS provisioned users by
-- `GET /scim/v2/Users?filter=userName eq "user<N>@bench.example"`, N drawn at random, as a
-- directory does before it creates or updates someone. Counts answers that found exactly one.
local users = tonumber(os.getenv("USERS"))
math.randomseed(os.time())

function request()
  local n = math.random(1, users)
  local path = "/scim/v2/Users?filter=userName%20eq%20%22user" .. n .. "%40bench.example%22"
  return wrk.format("GET", path)
end
