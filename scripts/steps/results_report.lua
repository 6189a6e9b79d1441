-- Turns a for_each's item outputs into a results document and a summary table: per input its
-- status, instance, result URL, how long the instance worked and what that cost, and for a
-- failed one the log lines around the failure.

return {
  description = "Summarise for_each results as JSON and a table",
  params = {
    items = {type = "list", required = true, description = "steps.<for_each>.outputs.items"},
    result_step = {type = "string", required = true, description = "id of the step that captured result_url"},
    instance_step = {type = "string", description = "id of the provision step (instance, price, start time)"},
  },
  run = function(with, flow)
    local rows, lines = {}, {}
    local ok, failed, total_cost = 0, 0, 0
    table.insert(lines, string.format("%-24s %-10s %-14s %8s %9s  %s", "INPUT", "STATUS", "INSTANCE", "TIME", "COST", "RESULT"))
    for _, item in ipairs(with.items) do
      local steps = item.steps or {}
      local result = (steps[with.result_step] or {}).outputs or {}
      local instance = with.instance_step and ((steps[with.instance_step] or {}).outputs or {}) or {}
      -- wait-for-marker keeps the log lines around a failure in its outputs.
      local error, context = item.error, result.failure_context
      local row = {
        input = item.item,
        status = item.status,
        result_url = result.result_url,
        error = error,
        error_context = context,
        instance_id = result.instance_id or instance.instance_id,
        gpu = instance.gpu,
        price_per_hour = instance.price_per_hour,
      }
      if instance.started_at and result.finished_at then
        row.duration_s = math.floor((result.finished_at - instance.started_at) * 10 + 0.5) / 10
        if instance.price_per_hour then
          row.cost_usd = math.floor(instance.price_per_hour * row.duration_s / 3600 * 10000 + 0.5) / 10000
          total_cost = total_cost + row.cost_usd
        end
      end
      if item.status == "succeeded" then ok = ok + 1 else failed = failed + 1 end
      table.insert(rows, row)
      local name = string.match(tostring(item.item), "[^/]+$") or tostring(item.item)
      table.insert(lines, string.format("%-24s %-10s %-14s %8s %9s  %s", name, item.status,
        tostring(row.instance_id or "-"), row.duration_s and (row.duration_s .. "s") or "-",
        row.cost_usd and string.format("$%.4f", row.cost_usd) or "-", row.result_url or row.error or ""))
      for _, line in ipairs(context or {}) do table.insert(lines, "    | " .. line) end
    end
    local summary = table.concat(lines, "\n")
    flow.log(ok .. " succeeded, " .. failed .. " failed, estimated cost $" .. string.format("%.4f", total_cost) .. "\n" .. summary)
    return {json = flow.json.encode({results = rows, succeeded = ok, failed = failed, estimated_cost_usd = total_cost}),
            table = summary, succeeded = ok, failed = failed}
  end,
}
