-- wrk script for the token endpoint: the client credentials grant with HTTP Basic and
-- 100 labels in turn, the same requests `portcullis-bench token` makes. A cross-check
-- that the bench's own load generator is not what limits the figures.
--
--   BASIC=$(printf '%s:%s' "$CLIENT_ID" "$CLIENT_SECRET" | base64 -w0) \
--     wrk -t1 -c64 -d10s -s crates/portcullis-bench/scripts/wrk-token.lua http://127.0.0.1:8080
--
-- Answers other than 200 are counted by wrk as "Non-2xx or 3xx responses".

local basic = os.getenv("BASIC")
if basic == nil or basic == "" then
  error("set BASIC to base64(client_id:client_secret)")
end

local n = 0

request = function()
  n = n + 1
  local body = "grant_type=client_credentials&label=site-" .. (n % 100)
  return wrk.format("POST", "/oauth/token", {
    ["Authorization"] = "Basic " .. basic,
    ["Content-Type"] = "application/x-www-form-urlencoded",
  }, body)
end
