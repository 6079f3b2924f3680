-- wrk script for scripts/bench.sh: every request reads a random tenant's
-- billing state with that tenant's own token, as a fleet of tenants would
-- (misses are the common case). BENCH_TOKENS names a file of
-- "tenant_id token" lines, written by scripts/bench/seed.py tokens.
local requests = {}

-- Per thread, once wrk has set the Host header: the requests, pre-formatted.
function init(args)
    for line in io.lines(os.getenv("BENCH_TOKENS")) do
        local tenant, token = line:match("^(%S+)%s+(%S+)$")
        if tenant then
            requests[#requests + 1] = wrk.format("GET", "/v1/tenants/" .. tenant .. "/billing",
                { ["Authorization"] = "Bearer " .. token })
        end
    end
    -- Each wrk thread has its own Lua state: seed each differently.
    math.randomseed(os.time() + tonumber(tostring(requests):match("0x(%x+)") or "0", 16))
end

request = function()
    return requests[math.random(#requests)]
end
