-- Shared by the bridge benchmark's wrk scripts: collects per-thread counters
-- and prints wrk's summary as one JSON line, "SHMQ_WRK_JSON {...}", which
-- bench/bridge_bench.py reads. Loaded with dofile() from each script.
--
-- wrk runs one Lua state per thread plus one for setup() and done(): the
-- counters live in the thread states and are read back with thread:get().
local M = {}

local threads = {}

-- Call from the script's setup(thread): remembers the thread for M.sum.
function M.setup(thread)
  table.insert(threads, thread)
end

-- The sum over all threads of the global counter `name`.
function M.sum(name)
  local total = 0
  for _, t in ipairs(threads) do
    total = total + (t:get(name) or 0)
  end
  return total
end

-- The global `name` of the first thread (settings made in init()).
function M.first(name)
  return threads[1] and threads[1]:get(name)
end

local function encode(fields)
  local keys = {}
  for k in pairs(fields) do
    table.insert(keys, k)
  end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    local v = fields[k]
    local text
    if type(v) == "number" then
      text = v == math.floor(v) and string.format("%.0f", v) or string.format("%.6g", v)
    else
      text = string.format("%q", tostring(v))
    end
    table.insert(parts, string.format("%q:%s", k, text))
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

-- Call from the script's done(): wrk's totals, latency percentiles in
-- microseconds, and the script's own figures in `extra`. errors_status is
-- wrk's count of answers with a status above 399.
function M.done(summary, latency, extra)
  local out = {
    requests = summary.requests,
    duration_us = summary.duration,
    bytes = summary.bytes,
    errors_connect = summary.errors.connect,
    errors_read = summary.errors.read,
    errors_write = summary.errors.write,
    errors_status = summary.errors.status,
    errors_timeout = summary.errors.timeout,
    latency_mean_us = latency.mean,
    latency_p50_us = latency:percentile(50),
    latency_p90_us = latency:percentile(90),
    latency_p99_us = latency:percentile(99),
    latency_max_us = latency.max,
  }
  for k, v in pairs(extra or {}) do
    out[k] = v
  end
  io.write("SHMQ_WRK_JSON ", encode(out), "\n")
end

return M
