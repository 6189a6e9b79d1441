-- batch_tick_report: one line saying what a batch_results tick did, and a failed tick when a
-- batch could not be checked or stored (the others were still done: the for_each tolerates it),
-- so the failure shows in `flowrun runs` and the monitor's log instead of passing silently.
return {
  description = "Sum up a batch_results tick; fail it, naming the batches, when some could not be handled",
  params = {
    items = {type = "list", required = true, description = "the for_each's outputs.items"},
    store_step = {type = "string", description = "id of the storing step in the body (default store)"},
  },
  run = function(with, flow)
    local store = with.store_step or "store"
    local stored, waiting, results, failed = 0, 0, 0, {}
    local by_type = {succeeded = 0, errored = 0, canceled = 0, expired = 0}
    for _, item in ipairs(with.items) do
      local out = item.steps and item.steps[store] and item.steps[store].outputs or {}
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
      end
    end
    local line = string.format(
      "%d batch(es) checked: %d stored (%d results: %d succeeded, %d errored, %d canceled, %d expired), %d still running, %d failed",
      #with.items, stored, results, by_type.succeeded, by_type.errored, by_type.canceled, by_type.expired, waiting,
      #failed)
    if #failed > 0 then flow.fail(line .. ": " .. table.concat(failed, "; ")) end
    flow.log(line)
    return {checked = #with.items, stored = stored, results = results, waiting = waiting, counts = by_type}
  end,
}
