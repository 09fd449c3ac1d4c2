-- wrk script: SendMessage, the same request over and over.
--
--   wrk -t1 -c16 -d5s --latency -s send_message.lua http://127.0.0.1:9324 \
--       -- QUEUE_URL [BODY_BYTES=64] [json|query]
--
-- json (default): AWS JSON 1.0, as the current SDKs send it. query: the
-- form-encoded Query protocol (boto3 and the AWS CLI as Debian ships them).
-- The body is BODY_BYTES of printable ASCII. Run against shmq-http-floor,
-- the same bytes measure the HTTP floor.
local report = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "wrk_report.lua")

local function form_encode(s)
  return (s:gsub("[^%w%-%._~]", function(c)
    return string.format("%%%02X", string.byte(c))
  end))
end

function init(args)
  local queue_url = args[1] or os.getenv("SHMQ_QUEUE_URL")
  assert(queue_url, "send_message.lua: pass the queue URL after --, or set SHMQ_QUEUE_URL")
  local size = tonumber(args[2] or "64")
  local protocol = args[3] or "json"
  local body = string.rep("0123456789abcdef", math.ceil(size / 16)):sub(1, size)
  wrk.method = "POST"
  wrk.path = "/"
  if protocol == "query" then
    wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
    wrk.body = "Action=SendMessage&Version=2012-11-05&QueueUrl=" .. form_encode(queue_url) .. "&MessageBody=" ..
                   form_encode(body)
  else
    assert(protocol == "json", "send_message.lua: protocol is json or query")
    wrk.headers["Content-Type"] = "application/x-amz-json-1.0"
    wrk.headers["X-Amz-Target"] = "AmazonSQS.SendMessage"
    wrk.body = string.format('{"QueueUrl":"%s","MessageBody":"%s"}', queue_url, body)
  end
end

setup = report.setup  -- wrk calls it per thread; report.sum adds up over them

-- No response() callback: wrk then skips keeping bodies, and the floor run
-- costs wrk as little as the bridge run. Failures show as statuses above 399.
function done(summary, latency, requests)
  local failed = summary.errors.status
  report.done(summary, latency, {action = "SendMessage", messages = summary.requests - failed, non_2xx = failed})
end
