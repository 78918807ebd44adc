-- wrk script: POST analytics events whose copies go out at the same moment on different
-- connections. Arguments after `--`: mode (single|batch), scenario tag, run id, copies_min,
-- copies_max, batch size.
--
-- Every wrk thread has its own Lua state, so each builds a deterministic sequence of events
-- keyed by (run, scenario, thread, seq). wrk asks request() for the next request whenever one of
-- the thread's connections is free, so consecutive calls go to different connections:
--   single: event k is returned by copies(k) consecutive calls, copies(k) cycling through
--           copies_min..copies_max, so its copies are in flight together on 2-3 connections;
--   batch:  request i carries events [i*stride, i*stride + size) with stride = size/copies_min,
--           so each event rides in about copies_min consecutive, overlapping batches.
-- done() prints one line "BENCH_JSON {...}" with wrk's counts, latency percentiles and how
-- many distinct events each thread issued, for bench/wrk.py to parse.

local threads = {}
local next_id = 1

function setup(thread)
   thread:set("id", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

local mode, scenario, run, copies_min, copies_max, size, stride
local seq = -1          -- single: index of the current event
local left = 0          -- single: copies of the current event still to send
local cached = nil      -- single: the current event's request, reused for each copy
local batch_no = -1     -- batch: index of the last batch built
issued = 0              -- requests built (read by done() through thread:get)
events = 0              -- distinct events issued by this thread

function init(args)
   mode = args[1] or "single"
   scenario = args[2] or mode
   run = args[3] or "run"
   copies_min = tonumber(args[4] or "2")
   copies_max = tonumber(args[5] or copies_min)
   size = tonumber(args[6] or "100")
   stride = math.max(1, math.floor(size / copies_min + 0.5))
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
end

local function event(k)
   -- ~300 bytes, the shape of a page view; every field is fixed by (run, scenario, thread, k).
   return string.format(
      '{"event":"page_view","run":"%s","scenario":"%s","thread":%d,"seq":%d,'
         .. '"user_id":"user-%d","session":"s-%d-%d","url":"/products/%d",'
         .. '"referrer":"https://example.com/search?q=item%d",'
         .. '"props":{"plan":"%s","ab":"%s","price":%d.%02d}}',
      run, scenario, id, k, k % 5000, id, math.floor(k / 20), k % 997, k % 101,
      (k % 3 == 0) and "pro" or "free", (k % 2 == 0) and "A" or "B", k % 300, k % 100)
end

local function single()
   if left == 0 then
      seq = seq + 1
      left = copies_min + seq % (copies_max - copies_min + 1)
      cached = wrk.format(nil, "/service-event/", nil, event(seq))
      events = seq + 1
   end
   left = left - 1
   return cached
end

local function batch()
   batch_no = batch_no + 1
   local first = batch_no * stride
   local parts = {}
   for k = first, first + size - 1 do
      parts[#parts + 1] = event(k)
   end
   events = first + size
   return wrk.format(nil, "/service-event/batch", nil, "[" .. table.concat(parts, ",") .. "]")
end

function request()
   issued = issued + 1
   if mode == "batch" then
      return batch()
   end
   return single()
end

function done(summary, latency, requests)
   local per_thread = {}
   local issued_total, events_total = 0, 0
   for _, t in ipairs(threads) do
      local i, e = t:get("issued") or 0, t:get("events") or 0
      issued_total = issued_total + i
      events_total = events_total + e
      per_thread[#per_thread + 1] = string.format('{"issued":%d,"events":%d}', i, e)
   end
   local pct = {}
   for _, p in ipairs({ 50, 75, 90, 99, 99.9 }) do
      pct[#pct + 1] = string.format('"%s":%d', tostring(p), latency:percentile(p))
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"duration_us":%d,"requests":%d,"bytes":%d,'
         .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
         .. '"latency_us":{"min":%d,"max":%d,"mean":%.1f,"stdev":%.1f,"percentiles":{%s}},'
         .. '"issued":%d,"events_issued":%d,"threads":[%s]}\n',
      summary.duration, summary.requests, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.min, latency.max, latency.mean, latency.stdev, table.concat(pct, ","),
      issued_total, events_total, table.concat(per_thread, ",")))
end
