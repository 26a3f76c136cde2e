-- SPDX-License-Identifier: Apache-2.0
-- wrk script: refresh-token rotation, POST /auth/refresh in a chain.
-- Usage: wrk -tN -cN ... -s refresh.lua URL -- TOKEN_FILE [ACCESS_PREFIX]
--   TOKEN_FILE holds at least N refresh tokens, one per line, each from its
--   own login (so each chain is its own session).
--   ACCESS_PREFIX (optional): thread i appends every access token it gets to
--   ACCESS_PREFIX<i>; run.sh uses this to mint many distinct access tokens
--   quickly for the cold verify measurement (not while timing refreshes).
--
-- Every refresh retires the token it presents and answers with the next one,
-- so each connection must present the token its own previous response gave.
-- wrk runs one Lua state per thread and gives response() no connection
-- handle, so run.sh starts exactly one connection per thread (-tN -cN): then
-- a thread's state is a connection's state, and wrk sends a connection's next
-- request only after its previous response was handled, so the chain holds.
-- A refused refresh (non-2xx) keeps the old token; run.sh fails on non-2xx.

local threads = {}

-- setup() runs in the main Lua state, once per thread: number the threads so
-- that each picks a different line of TOKEN_FILE, and keep them for done().
function setup(thread)
    table.insert(threads, thread)
    thread:set("index", #threads)
end

function init(args)
    local file = args[1]
    if not file then
        error("refresh.lua needs: -- TOKEN_FILE")
    end
    local i = 0
    for line in io.lines(file) do
        i = i + 1
        if i == index then
            token = line
        end
    end
    if not token then
        error("refresh.lua: " .. file .. " has no token for thread " .. tostring(index))
    end
    if args[2] then
        access_out = assert(io.open(args[2] .. index, "a"))
        access_out:setvbuf("line") -- complete lines on disk when wrk exits
    end
end

-- Self-check of the chaining: every token must be presented exactly once.
-- A repeat would mean the chain broke (a resent request, or a request sent
-- before the previous response was read); jwtd would still answer it with
-- 200 inside its reuse interval, so the status codes alone would not show it.
-- Counted when the answer arrives: wrk also calls request() once, unsent, in
-- the first thread's state to inspect the script, so request() cannot count.
presented = 0
repeats = 0
local seen = {}
local in_flight

function request()
    in_flight = token
    return wrk.format("POST", "/auth/refresh", {["Content-Type"] = "application/json"},
                      '{"refresh_token":"' .. token .. '"}')
end

function response(status, headers, body)
    presented = presented + 1
    if seen[in_flight] then
        repeats = repeats + 1
    end
    seen[in_flight] = true
    if status == 200 then
        local next_token = body:match('"refresh_token"%s*:%s*"([^"]+)"')
        if next_token then
            token = next_token
        end
        if access_out then
            local access = body:match('"access_token"%s*:%s*"([^"]+)"')
            if access then
                access_out:write(access, "\n")
            end
        end
    end
end

-- Runs in the main state after the test: one line for run.sh to check.
function done(summary, latency, requests)
    local p, r = 0, 0
    for _, thread in ipairs(threads) do
        p = p + thread:get("presented")
        r = r + thread:get("repeats")
    end
    io.write(string.format("refresh.lua: chains=%d presented=%d repeated=%d\n", #threads, p, r))
end
