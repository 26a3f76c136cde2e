-- SPDX-License-Identifier: Apache-2.0
-- wrk script: GET /auth/verify cycling through many distinct access tokens.
-- Usage: wrk -tN ... -s verify_cold.lua URL -- TOKEN_FILE N
--   TOKEN_FILE: one access token per line, many more than jwtd's
--   verification cache has slots (see run.sh: COLD_TOKENS).
--
-- With a single token every request after the first is answered from jwtd's
-- cache of verified tokens, so the signature is never checked again. Cycling
-- through far more tokens than the cache holds makes (almost) every request
-- a cache miss: a full signature verification and claim check. run.sh reads
-- the cache counters from /metrics around the run to report the real miss
-- rate.
--
-- Thread i takes every N-th line (N = wrk's thread count, repeated as the
-- second argument because a thread's Lua state cannot see it), so the
-- threads' sets are disjoint and together cover the file. Requests are formatted once in
-- init(), so the per-request client cost stays small.

local threads = {}

function setup(thread)
    table.insert(threads, thread)
    thread:set("index", #threads)
end

local requests = {}
local n, next_i = 0, 1

function init(args)
    local file = args[1]
    if not file then
        error("verify_cold.lua needs: -- TOKEN_FILE THREADS")
    end
    local every = tonumber(args[2]) or 1
    local line_no = 0
    for line in io.lines(file) do
        if line ~= "" then
            if line_no % every == index - 1 then
                n = n + 1
                requests[n] = wrk.format("GET", nil, {["Authorization"] = "Bearer " .. line})
            end
            line_no = line_no + 1
        end
    end
    if n == 0 then
        error("verify_cold.lua: no tokens for thread " .. tostring(index))
    end
end

function request()
    local r = requests[next_i]
    next_i = next_i % n + 1
    return r
end
