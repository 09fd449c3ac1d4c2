-- wrk script: ReceiveMessage, then DeleteMessage of what it returned.
--
--   wrk -t1 -c16 -d5s --latency -s receive_delete.lua http://127.0.0.1:9324 -- QUEUE_URL [MAX=1|10]
--
-- Each wrk thread keeps the receipt handles its receives returned; its next
-- request deletes them (DeleteMessage for one, DeleteMessageBatch for up to
-- ten), else receives again (MaxNumberOfMessages MAX, WaitTimeSeconds 0, so
-- an empty queue answers at once). A pair is one receive and the delete of
-- what it returned. Which connection sends the delete does not matter: wrk
-- does not tell a script which connection a call is for.
--
-- The queue must hold enough messages for the whole run. An empty receive
-- answers "{}", as a DeleteMessage does: with MAX=1 it is counted as empty
-- only while no delete is outstanding, so `empty_receives` may miss some.
-- bench/bridge_bench.py fills the queue first and checks that messages are
-- still visible after the run, which proves that no receive was empty.
local report = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "wrk_report.lua")

-- Per-thread counters, summed in done().
receives = 0          -- ReceiveMessage answers that held messages
received = 0          -- messages they held
deletes = 0           -- DeleteMessage(Batch) answers
deleted = 0           -- messages they deleted
empty = 0             -- answers "{}" while no delete was outstanding: an empty receive
failed_entries = 0    -- DeleteMessageBatch entries under "Failed"
non_2xx = 0

max_messages = 1      -- MAX; a global so that done() can read it from a thread

local queue_url
local receive_request
local delete_headers
local handles = {}    -- received, not yet asked to be deleted (a FIFO of receipt handles)
local first, last = 1, 0
local deletes_out = 0 -- delete requests sent, not yet answered

function init(args)
  queue_url = args[1] or os.getenv("SHMQ_QUEUE_URL")
  assert(queue_url, "receive_delete.lua: pass the queue URL after --, or set SHMQ_QUEUE_URL")
  max_messages = tonumber(args[2] or "1")
  assert(max_messages >= 1 and max_messages <= 10, "receive_delete.lua: MAX is 1 to 10")
  wrk.method = "POST"
  wrk.path = "/"
  wrk.headers["Content-Type"] = "application/x-amz-json-1.0"
  local receive_headers = {}
  delete_headers = {}
  for k, v in pairs(wrk.headers) do
    receive_headers[k] = v
    delete_headers[k] = v
  end
  receive_headers["X-Amz-Target"] = "AmazonSQS.ReceiveMessage"
  delete_headers["X-Amz-Target"] = max_messages == 1 and "AmazonSQS.DeleteMessage" or "AmazonSQS.DeleteMessageBatch"
  receive_request = wrk.format(nil, nil, receive_headers,
                               string.format('{"QueueUrl":"%s","MaxNumberOfMessages":%d,"WaitTimeSeconds":0}',
                                             queue_url, max_messages))
end

local function delete_request()
  deletes_out = deletes_out + 1
  if max_messages == 1 then
    local handle = handles[first]
    handles[first] = nil
    first = first + 1
    return wrk.format(nil, nil, delete_headers,
                      string.format('{"QueueUrl":"%s","ReceiptHandle":"%s"}', queue_url, handle))
  end
  local entries = {}
  while first <= last and #entries < 10 do
    table.insert(entries, string.format('{"Id":"e%d","ReceiptHandle":"%s"}', #entries, handles[first]))
    handles[first] = nil
    first = first + 1
  end
  return wrk.format(nil, nil, delete_headers,
                    string.format('{"QueueUrl":"%s","Entries":[%s]}', queue_url, table.concat(entries, ",")))
end

function request()
  if first <= last then
    return delete_request()
  end
  return receive_request
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non_2xx = non_2xx + 1
    return
  end
  if body:find('"ReceiptHandle"', 1, true) then
    receives = receives + 1
    for handle in body:gmatch('"ReceiptHandle":"([^"]+)"') do
      last = last + 1
      handles[last] = handle
      received = received + 1
    end
  elseif body:find('"Successful"', 1, true) then
    deletes = deletes + 1
    deletes_out = deletes_out - 1
    for _ in body:gmatch('"Id"') do
      deleted = deleted + 1
    end
    local failed = body:match('"Failed":%[(.-)%]')
    if failed and failed ~= "" then
      for _ in failed:gmatch('"Id"') do
        failed_entries = failed_entries + 1
        deleted = deleted - 1
      end
    end
  elseif max_messages == 1 and deletes_out > 0 then
    deletes = deletes + 1
    deletes_out = deletes_out - 1
    deleted = deleted + 1
  else
    empty = empty + 1
  end
end

setup = report.setup  -- wrk calls it per thread; report.sum adds up over them

function done(summary, latency, requests)
  local batch = report.first("max_messages") > 1
  report.done(summary, latency, {
    action = batch and "ReceiveMessage+DeleteMessageBatch" or "ReceiveMessage+DeleteMessage",
    receives = report.sum("receives"),
    received = report.sum("received"),
    deletes = report.sum("deletes"),
    deleted = report.sum("deleted"),
    empty_receives = report.sum("empty"),
    failed_entries = report.sum("failed_entries"),
    non_2xx = report.sum("non_2xx"),
  })
end
