-- Prints one machine-readable line after wrk's own summary, so the runner does not parse wrk's text
-- (whose units change between us, ms and s). Latencies are in microseconds, as wrk records them.
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK_JSON {\"requests\":%d,\"durationUs\":%d,\"bytes\":%d,\"p50Us\":%d,\"p90Us\":%d,\"p99Us\":%d,\"maxUs\":%d," ..
    "\"errors\":{\"connect\":%d,\"read\":%d,\"write\":%d,\"status\":%d,\"timeout\":%d}}\n",
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
