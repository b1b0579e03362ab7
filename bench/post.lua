-- wrk script: POST one fixed JSON body, then print the results as one JSON line.
-- WRK_BODY sets the body (default: a one-message OpenAI chat request),
-- WRK_AUTH a bearer key; bench/run.py sets both per subject. With WRK_UNIQUE=1
-- every request numbers its "Say hello." prompt, so no two bodies are alike
-- (a response cache then misses every time).
local body = os.getenv("WRK_BODY")
if body == nil or body == "" then
  body = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello."}]}'
end
wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
local auth = os.getenv("WRK_AUTH")
if auth ~= nil and auth ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. auth
end

if os.getenv("WRK_UNIQUE") == "1" then
  local head, tail = body:match("^(.-Say hello)(%..*)$")
  if head == nil then
    error("WRK_UNIQUE=1 needs a body holding the prompt 'Say hello.'")
  end
  local sent = 0
  -- The time keeps numbers apart across runs against one server; the counter within a run.
  local run = tostring(os.time())
  function request()
    sent = sent + 1
    return wrk.format(nil, nil, nil, head .. " " .. run .. "-" .. sent .. tail)
  end
end

-- wrk's percentile() takes 0-100 and answers in microseconds.
function done(summary, latency, requests)
  local e = summary.errors
  local pct = {}
  for _, q in ipairs({50, 75, 90, 99, 99.9}) do
    pct[#pct + 1] = string.format('"p%s":%d', tostring(q), latency:percentile(q))
  end
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.1f,"max":%d,"stdev":%.1f,%s}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.max, latency.stdev, table.concat(pct, ",")))
end
