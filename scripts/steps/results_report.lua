-- Turns a for_each's item outputs into a results document and a summary table.
return {
  description = "Summarise for_each results as JSON and a table",
  params = {
    items = {type = "list", required = true, description = "steps.<for_each>.outputs.items"},
    result_step = {type = "string", required = true, description = "id of the step that captured the result"},
  },
  run = function(with, flow)
    local rows, lines = {}, {}
    local ok, failed = 0, 0
    table.insert(lines, string.format("%-28s %-10s %s", "INPUT", "STATUS", "RESULT"))
    for _, item in ipairs(with.items) do
      local steps = item.steps or {}
      local result = (steps[with.result_step] or {}).outputs or {}
      local row = {
        input = item.item,
        status = item.status,
        result_url = result.result_url,
        error = item.error,
      }
      if item.status == "succeeded" then ok = ok + 1 else failed = failed + 1 end
      table.insert(rows, row)
      local name = string.match(tostring(item.item), "[^/]+$") or tostring(item.item)
      table.insert(lines, string.format("%-28s %-10s %s", name, item.status, row.result_url or row.error or ""))
    end
    local summary = table.concat(lines, "\n")
    flow.log(ok .. " succeeded, " .. failed .. " failed\n" .. summary)
    return {json = flow.json.encode({results = rows, succeeded = ok, failed = failed}), table = summary,
            succeeded = ok, failed = failed}
  end,
}
