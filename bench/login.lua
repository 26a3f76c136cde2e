-- SPDX-License-Identifier: Apache-2.0
-- wrk script: successful logins, as fast as the server completes them.
-- Usage: wrk ... -s login.lua URL -- PATH USERNAME PASSWORD
--   PATH is /auth/login for jwtd and the NestJS peer alike.
-- Every request carries the same correct credentials: failed logins would
-- trip the per-username and per-address back-off and measure the limiter
-- instead of the password hash. Any non-2xx answer is counted by wrk
-- ("Non-2xx or 3xx responses"), and bench/run.sh fails the run on it.
-- The username and password must not need JSON escaping (run.sh picks them).

function init(args)
    local path, user, pass = args[1], args[2], args[3]
    if not (path and user and pass) then
        error("login.lua needs: -- PATH USERNAME PASSWORD")
    end
    wrk.method = "POST"
    wrk.path = path
    wrk.headers["Content-Type"] = "application/json"
    wrk.body = '{"username":"' .. user .. '","password":"' .. pass .. '"}'
end
