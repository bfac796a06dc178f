-- wrk script for scripts/bench-gateway: every request is POST /conversations/ID/messages with a
-- user message of 100 bytes of content, and ID is taken round-robin from the script's arguments.
--
-- Usage: wrk -t THREADS ... -H 'x-org-key: KEY' -s scripts/wrk/post-message.lua URL -- THREADS ID [ID...]
--
-- THREADS must repeat wrk's -t value, because a thread's script cannot read it. Thread k (from 0)
-- cycles over the ids at positions k, k + THREADS, k + 2 * THREADS and so on, so two threads never
-- send to the same conversation. Within a thread the requests in flight go to consecutive ids. With
-- at least as many ids as connections, two requests in flight therefore rarely share a
-- conversation, and rarely wait for the same row lock in the store's message-add statement. With
-- fewer ids than threads, every thread cycles over all ids.

local content_bytes = 100

-- Set in the main Lua state, once per thread before that thread starts.
local threads_set_up = 0

function setup(thread)
   thread:set("thread_index", threads_set_up)
   threads_set_up = threads_set_up + 1
end

-- The ready-made requests of this thread, and the position of the next one.
local requests = {}
local next_request = 1

function init(args)
   local thread_count = tonumber(args[1])
   if thread_count == nil or thread_count < 1 or thread_count % 1 ~= 0 then
      error("post-message.lua: invalid thread count '" .. tostring(args[1])
         .. "': expected wrk's -t value as the first argument after --")
   end
   local ids = {}
   for i = 2, #args do
      ids[#ids + 1] = args[i]
   end
   if #ids == 0 then
      error("post-message.lua: missing conversation ids after the thread count")
   end

   local own_ids = {}
   if #ids < thread_count then
      own_ids = ids
   else
      -- thread_index is set by setup() in this thread's own Lua state.
      for i = thread_index + 1, #ids, thread_count do
         own_ids[#own_ids + 1] = ids[i]
      end
   end

   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
   local body = '{"role":"user","content":"' .. string.rep("x", content_bytes) .. '"}'
   -- wrk.format adds Host, Content-Length and the -H headers of the command line.
   for i, id in ipairs(own_ids) do
      requests[i] = wrk.format(nil, "/conversations/" .. id .. "/messages", nil, body)
   end
end

function request()
   local formatted = requests[next_request]
   next_request = next_request % #requests + 1
   return formatted
end
