-- store_batch_results: write an ended Message Batch's results into the database, exactly once.
--
-- The JSONL results are streamed line by line (never the whole file in memory) and written in
-- short transactions of `chunk_rows` rows, each running `result_sql` once per result with its
-- statements prepared once per chunk. The batch is marked `completed` in the transaction of the
-- last chunk. A crash or a dropped download mid-way leaves some chunks committed and the batch
-- still `submitted`, so the next attempt or tick downloads it again and rewrites those rows:
-- that is harmless because `result_sql` must be idempotent per custom_id (UPDATE ... WHERE key =
-- :custom_id, or INSERT ... ON CONFLICT DO UPDATE). No result is lost (the batch is completed
-- only with its last row) and none is doubled (a rewrite replaces the row). The application
-- sharing the database waits for one chunk at most, never for the whole download.
-- Schema of the default: workflows/sql/batch_results.sql.

-- The parameters result_sql may use (anything else is refused before the download starts).
local NAMES = {"custom_id", "batch_id", "status", "text", "value", "error", "input_tokens", "output_tokens",
               "stop_reason"}

-- The default: today's `requests` row per custom_id; a custom_id the table did not list is
-- inserted rather than lost. `value` keeps the text as canonical JSON when the text is JSON.
local DEFAULT_SQL = [[
INSERT INTO requests (custom_id, batch_id, status, output, value, stop_reason, input_tokens, output_tokens,
  error, updated_at)
VALUES (:custom_id, :batch_id, :status, :text,
  CASE WHEN json_valid(:text) AND substr(ltrim(:text, ' ' || char(9, 10, 13)), 1, 1) IN ('{', '[')
       THEN json(:text) END,
  :stop_reason, :input_tokens, :output_tokens, :error, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
ON CONFLICT (custom_id) DO UPDATE SET status = excluded.status, output = excluded.output,
  value = excluded.value, stop_reason = excluded.stop_reason, input_tokens = excluded.input_tokens,
  output_tokens = excluded.output_tokens, error = excluded.error, updated_at = excluded.updated_at]]

local COMPLETE = [[
UPDATE batches SET status = 'completed', completed_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), counts = :counts
WHERE id = :id AND status = 'submitted']]

local function text_of(message)
  local parts = {}
  for _, block in ipairs(message and message.content or {}) do
    if block.type == "text" and block.text then parts[#parts + 1] = block.text end
  end
  return table.concat(parts)
end

-- The parameters for one result line (nil fields bind as NULL). `value` is encoded only when
-- result_sql uses it: re-encoding every result costs as much as parsing it.
local function row_of(line, batch_id, json, with_value)
  local result = line.result or {}
  local row = {custom_id = line.custom_id, batch_id = batch_id, status = result.type,
               value = with_value and json.encode(result) or nil}
  if result.type == "succeeded" then
    local message = result.message or {}
    row.text = text_of(message)
    row.stop_reason = message.stop_reason
    row.input_tokens = message.usage and message.usage.input_tokens
    row.output_tokens = message.usage and message.usage.output_tokens
  elseif result.type == "errored" then
    local e = result.error and result.error.error or {}
    row.error = (e.type or "error") .. ": " .. (e.message or "")
  elseif result.type ~= "canceled" and result.type ~= "expired" then
    error("result of " .. tostring(line.custom_id) .. " has an unknown type: " .. tostring(result.type))
  end
  if type(row.custom_id) ~= "string" then error("a result line has no custom_id") end
  return row
end

-- 45952 -> "45,952"
local function thousands(n)
  local s = tostring(math.floor(n))
  local out = s:reverse():gsub("(%d%d%d)", "%1,"):reverse()
  return (out:gsub("^,", ""))
end

return {
  description = "Store an ended Message Batch's JSONL results in SQLite in short idempotent transactions, and mark it completed",
  params = {
    database = {type = "string", required = true, description = "the SQLite file (schema: workflows/sql/batch_results.sql)"},
    batch = {type = "map", required = true, description = "the MessageBatch, as GET /v1/messages/batches/{id} returns it"},
    api_url = {type = "string", required = true, description = "base URL, for a relative results_url"},
    api_key = {type = "string", description = "x-api-key"},
    anthropic_version = {type = "string", description = "anthropic-version header (default 2023-06-01)"},
    result_sql = {type = "string", description = "statements run per result, idempotent per custom_id (default: the requests table)"},
    chunk_rows = {type = "number", description = "results written per transaction (default 1000)"},
  },
  run = function(with, flow)
    local batch = with.batch
    if batch.processing_status ~= "ended" then
      flow.fail("batch " .. tostring(batch.id) .. " has not ended (" .. tostring(batch.processing_status) .. ")")
    end
    local url = batch.results_url
    if not url then flow.fail("batch " .. batch.id .. " has ended but has no results_url yet", "transient") end
    if url:sub(1, 1) == "/" then url = with.api_url .. url end
    local sql = with.result_sql
    if sql == nil or sql == "" then sql = DEFAULT_SQL end
    local chunk_rows = math.floor(tonumber(with.chunk_rows) or 1000)
    if chunk_rows < 1 then flow.fail("chunk_rows must be at least 1, not " .. tostring(with.chunk_rows)) end
    local options = {names = NAMES, key = "custom_id"}
    local with_value = sql:find("[:@$]value%f[^%w_]") ~= nil

    local db = flow.db(with.database)
    -- Compiled once before the download: a misspelt table or parameter fails here, not mid-way.
    db:exec_many(sql, {}, options)
    local current = db:exec("SELECT status FROM batches WHERE id = :id", {id = batch.id})
    if #current == 0 or current[1].status ~= "submitted" then
      db:close()
      flow.log("batch " .. batch.id .. " is " .. (#current == 0 and "not in the batches table" or "already completed") ..
        "; nothing written")
      return {batch_id = batch.id, stored = false}
    end

    local counts = {succeeded = 0, errored = 0, canceled = 0, expired = 0}
    local chunk, written, chunks, changed = {}, 0, 0, 0
    local expected = 0
    for k, n in pairs(batch.request_counts or {}) do
      if counts[k] then expected = expected + n end
    end
    local next_progress = 10000
    local function write(last)
      local done = false
      db:transaction(function()
        if #chunk > 0 then changed = changed + db:exec_many(sql, chunk, options) end
        if last then
          local _, n = db:exec(COMPLETE, {id = batch.id, counts = flow.json.encode(counts)})
          done = n > 0
        end
      end)
      written = written + #chunk
      chunks = chunks + 1
      chunk = {}
      if written >= next_progress and not last then
        flow.log(string.format("batch %s: %s of %s result(s) written", batch.id, thousands(written), thousands(expected)))
        next_progress = next_progress + 10000
      end
      return done
    end

    local started = os.clock()
    flow.http_lines({
      url = url,
      headers = {["x-api-key"] = with.api_key, ["anthropic-version"] = with.anthropic_version or "2023-06-01"},
      jsonl = true,
    }, function(line)
      local row = row_of(line, batch.id, flow.json, with_value)
      chunk[#chunk + 1] = row
      counts[row.status] = counts[row.status] + 1
      if #chunk >= chunk_rows then write(false) end
    end)
    local completed = write(true)
    local seconds = os.clock() - started
    db:close()

    if not completed then  -- another writer completed it meanwhile; our rewrites were idempotent
      flow.log("batch " .. batch.id .. " was completed by someone else during the download")
      return {batch_id = batch.id, stored = false}
    end
    local total = counts.succeeded + counts.errored + counts.canceled + counts.expired
    flow.log(string.format("batch %s: stored %d result(s): %d succeeded, %d errored, %d canceled, %d expired " ..
      "(%d transaction(s) of up to %d rows, %d row(s) changed, %.0f results/s CPU)",
      batch.id, total, counts.succeeded, counts.errored, counts.canceled, counts.expired, chunks, chunk_rows, changed,
      seconds > 0 and total / seconds or 0))
    return {batch_id = batch.id, stored = true, results = total, counts = counts, changed = changed,
            transactions = chunks}
  end,
}
