-- wrk script: SendMessageBatch of 10 messages, over and over. The benchmark
-- driver fills the queue with it before ReceiveMessage runs.
--
--   wrk -t1 -c16 -d2s -s send_message_batch.lua http://127.0.0.1:9324 -- QUEUE_URL [BODY_BYTES=64]
local report = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "wrk_report.lua")

sent = 0  -- messages the bridge accepted (entries under "Successful"), this thread
non_2xx = 0

function init(args)
  local queue_url = args[1] or os.getenv("SHMQ_QUEUE_URL")
  assert(queue_url, "send_message_batch.lua: pass the queue URL after --, or set SHMQ_QUEUE_URL")
  local size = tonumber(args[2] or "64")
  local body = string.rep("0123456789abcdef", math.ceil(size / 16)):sub(1, size)
  local entries = {}
  for i = 1, 10 do
    entries[i] = string.format('{"Id":"m%d","MessageBody":"%s"}', i, body)
  end
  wrk.method = "POST"
  wrk.path = "/"
  wrk.headers["Content-Type"] = "application/x-amz-json-1.0"
  wrk.headers["X-Amz-Target"] = "AmazonSQS.SendMessageBatch"
  wrk.body = string.format('{"QueueUrl":"%s","Entries":[%s]}', queue_url, table.concat(entries, ","))
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non_2xx = non_2xx + 1
    return
  end
  -- A failed entry has no MessageId: a full queue shows here, not in the status.
  for _ in body:gmatch('"MessageId"') do
    sent = sent + 1
  end
end

setup = report.setup  -- wrk calls it per thread; report.sum adds up over them

function done(summary, latency, requests)
  report.done(summary, latency, {
    action = "SendMessageBatch",
    messages = report.sum("sent"),
    non_2xx = report.sum("non_2xx"),
  })
end
