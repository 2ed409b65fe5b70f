-- post.lua: wrk script that POSTs one audio file to /classify, optionally paced.
-- env BODY: path of the audio file; env DELAY_MS: wait before each request on a
-- connection (0 = as fast as possible), so connections * 1000 / DELAY_MS is the rate.
local f = assert(io.open(os.getenv("BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "audio/wav"
local pause = tonumber(os.getenv("DELAY_MS") or "0")

function delay()
  return pause
end

local non200 = 0
function response(status, headers, body)
  if status ~= 200 then non200 = non200 + 1 end
end

function done(summary, latency, requests)
  io.write(string.format("RESULT rps=%.2f p50=%.3f p90=%.3f p99=%.3f max=%.3f requests=%d errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1e3, latency:percentile(90) / 1e3,
    latency:percentile(99) / 1e3, latency.max / 1e3, summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout))
end
