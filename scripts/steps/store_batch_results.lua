-- store_batch_results: write an ended Message Batch's results into the database, exactly once.
--
-- Everything happens in one transaction: claim the batch (submitted -> completed), stream its
-- JSONL results line by line (never the whole file in memory), update one `requests` row per
-- custom_id. An error anywhere (a dropped download, a kill, a bad line) rolls all of it back,
-- so the batch stays `submitted` and the next attempt or tick starts it afresh. A batch that
-- another monitor already completed is claimed by nobody and left alone.
-- Schema: workflows/sql/batch_results.sql.

local function text_of(message)
  local parts = {}
  for _, block in ipairs(message and message.content or {}) do
    if block.type == "text" and block.text then parts[#parts + 1] = block.text end
  end
  return table.concat(parts)
end

-- The text as canonical JSON when it is JSON (a model asked for JSON), else nil.
local function json_value(text, json)
  local first = text:match("^%s*(.)")
  if first ~= "{" and first ~= "[" then return nil end
  local ok, value = pcall(json.decode, text)
  if ok then return json.encode(value) end
  return nil
end

-- The row values for one result line (nil fields bind as NULL).
local function row_of(line, batch_id, json)
  local result = line.result or {}
  local row = {custom_id = line.custom_id, batch = batch_id, status = result.type, output = nil, value = nil,
               stop_reason = nil, input_tokens = nil, output_tokens = nil, error = nil}
  if result.type == "succeeded" then
    local message = result.message or {}
    row.output = text_of(message)
    row.value = json_value(row.output, json)
    row.stop_reason = message.stop_reason
    row.input_tokens = message.usage and message.usage.input_tokens
    row.output_tokens = message.usage and message.usage.output_tokens
  elseif result.type == "errored" then
    local e = result.error and result.error.error or {}
    row.error = (e.type or "error") .. ": " .. (e.message or "")
  elseif result.type ~= "canceled" and result.type ~= "expired" then
    error("result of " .. tostring(line.custom_id) .. " has an unknown type: " .. tostring(result.type))
  end
  return row
end

local UPDATE = [[
UPDATE requests SET status = :status, output = :output, value = :value, stop_reason = :stop_reason,
  input_tokens = :input_tokens, output_tokens = :output_tokens, error = :error,
  updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
WHERE custom_id = :custom_id AND batch_id = :batch]]

local INSERT = [[
INSERT INTO requests (custom_id, batch_id, status, output, value, stop_reason, input_tokens, output_tokens,
  error, updated_at)
VALUES (:custom_id, :batch, :status, :output, :value, :stop_reason, :input_tokens, :output_tokens, :error,
  strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))]]

return {
  description = "Store an ended Message Batch's JSONL results in SQLite in one transaction, and mark it completed",
  params = {
    database = {type = "string", required = true, description = "the SQLite file (schema: workflows/sql/batch_results.sql)"},
    batch = {type = "map", required = true, description = "the MessageBatch, as GET /v1/messages/batches/{id} returns it"},
    api_url = {type = "string", required = true, description = "base URL, for a relative results_url"},
    api_key = {type = "string", description = "x-api-key"},
    anthropic_version = {type = "string", description = "anthropic-version header (default 2023-06-01)"},
  },
  run = function(with, flow)
    local batch = with.batch
    if batch.processing_status ~= "ended" then
      flow.fail("batch " .. tostring(batch.id) .. " has not ended (" .. tostring(batch.processing_status) .. ")")
    end
    local url = batch.results_url
    if not url then flow.fail("batch " .. batch.id .. " has ended but has no results_url yet", "transient") end
    if url:sub(1, 1) == "/" then url = with.api_url .. url end

    local counts = {succeeded = 0, errored = 0, canceled = 0, expired = 0, unlisted = 0}
    local db = flow.db(with.database)
    local claimed = db:transaction(function()
      local _, n = db:exec([[UPDATE batches SET status = 'completed', completed_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
                             WHERE id = :id AND status = 'submitted']], {id = batch.id})
      if n == 0 then return false end
      flow.http_lines({
        url = url,
        headers = {["x-api-key"] = with.api_key, ["anthropic-version"] = with.anthropic_version or "2023-06-01"},
        jsonl = true,
      }, function(line)
        local row = row_of(line, batch.id, flow.json)
        local _, updated = db:exec(UPDATE, row)
        if updated == 0 then  -- a custom_id the table did not list: keep it rather than lose it
          db:exec(INSERT, row)
          counts.unlisted = counts.unlisted + 1
        end
        counts[row.status] = counts[row.status] + 1
      end)
      db:exec("UPDATE batches SET counts = :counts WHERE id = :id", {counts = flow.json.encode(counts), id = batch.id})
      return true
    end)
    db:close()

    if not claimed then
      flow.log("batch " .. batch.id .. " is already completed; nothing written")
      return {batch_id = batch.id, stored = false}
    end
    local total = counts.succeeded + counts.errored + counts.canceled + counts.expired
    flow.log(string.format("batch %s: stored %d result(s): %d succeeded, %d errored, %d canceled, %d expired%s",
      batch.id, total, counts.succeeded, counts.errored, counts.canceled, counts.expired,
      counts.unlisted > 0 and string.format(" (%d not listed before, added)", counts.unlisted) or ""))
    return {batch_id = batch.id, stored = true, results = total, counts = counts}
  end,
}
