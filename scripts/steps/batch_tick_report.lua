-- batch_tick_report: what a batch_results tick did. One line per batch still in progress with
-- its request_counts ("45,952 processed, 5,650 remaining"), then one summing line; a failed
-- tick when a batch could not be checked or stored (the others were still done: the for_each
-- tolerates it), so the failure shows in `flowrun runs` and the monitor's log instead of passing
-- silently.

-- 45952 -> "45,952"
local function thousands(n)
  local s = tostring(math.floor(tonumber(n) or 0))
  local out = s:reverse():gsub("(%d%d%d)", "%1,"):reverse()
  return (out:gsub("^,", ""):gsub("^%-,", "-"))
end

local KINDS = {"succeeded", "errored", "canceled", "expired"}

return {
  description = "Sum up a batch_results tick (progress of running batches); fail it, naming the batches, when some could not be handled",
  params = {
    items = {type = "list", required = true, description = "the for_each's outputs.items"},
    store_step = {type = "string", description = "id of the storing step in the body (default store)"},
    status_step = {type = "string", description = "id of the step that retrieved the MessageBatch (default status)"},
  },
  run = function(with, flow)
    local store = with.store_step or "store"
    local status_step = with.status_step or "status"
    local stored, waiting, results, failed = 0, 0, 0, {}
    local by_type = {succeeded = 0, errored = 0, canceled = 0, expired = 0}
    local processed, remaining = 0, 0
    for _, item in ipairs(with.items) do
      local steps = item.steps or {}
      local out = steps[store] and steps[store].outputs or {}
      local batch = steps[status_step] and steps[status_step].outputs and steps[status_step].outputs.json
      if item.status == "failed" then
        failed[#failed + 1] = tostring(item.item.id) .. " (" .. tostring(item.error) .. ")"
      elseif out.stored then
        stored = stored + 1
        results = results + (out.results or 0)
        for k, n in pairs(out.counts or {}) do
          if by_type[k] then by_type[k] = by_type[k] + n end
        end
      else
        waiting = waiting + 1
        local c = type(batch) == "table" and type(batch.request_counts) == "table" and batch.request_counts
        if c and batch.processing_status ~= "ended" then
          local done = 0
          for _, k in ipairs(KINDS) do done = done + (tonumber(c[k]) or 0) end
          local left = tonumber(c.processing) or 0
          processed, remaining = processed + done, remaining + left
          flow.log(string.format("batch %s %s: %s processed, %s remaining (%s succeeded, %s errored, %s canceled, %s expired)",
            tostring(batch.id or item.item.id), tostring(batch.processing_status), thousands(done), thousands(left),
            thousands(c.succeeded), thousands(c.errored), thousands(c.canceled), thousands(c.expired)))
        end
      end
    end
    local line = string.format(
      "%d batch(es) checked: %d stored (%d results: %d succeeded, %d errored, %d canceled, %d expired), %d still running (%s processed, %s remaining), %d failed",
      #with.items, stored, results, by_type.succeeded, by_type.errored, by_type.canceled, by_type.expired, waiting,
      thousands(processed), thousands(remaining), #failed)
    if #failed > 0 then flow.fail(line .. ": " .. table.concat(failed, "; ")) end
    flow.log(line)
    return {checked = #with.items, stored = stored, results = results, waiting = waiting, counts = by_type,
            processed = processed, remaining = remaining}
  end,
}
