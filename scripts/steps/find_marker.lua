-- Looks for a success marker in a job's output and captures values from it. Fails (permanently)
-- when the marker is missing or when a line matches a failure pattern.
return {
  description = "Find a success marker in text and capture values with Lua patterns",
  params = {
    text = {type = "string", required = true, description = "the output to search"},
    marker = {type = "string", required = true, description = "a plain string that means success"},
    capture = {type = "map", description = "output name -> Lua pattern with one capture"},
    fail_on = {type = "list", description = "plain strings that mean failure"},
  },
  run = function(with, flow)
    local text = with.text or ""
    for _, bad in ipairs(with.fail_on or {}) do
      local at = string.find(text, bad, 1, true)
      if at then
        local line_end = string.find(text, "\n", at, true) or #text + 1
        local line_start = at
        while line_start > 1 and string.sub(text, line_start - 1, line_start - 1) ~= "\n" do
          line_start = line_start - 1
        end
        flow.fail("failure pattern '" .. bad .. "' in: " .. string.sub(text, line_start, line_end - 1))
      end
    end
    if not string.find(text, with.marker, 1, true) then
      flow.fail("marker '" .. with.marker .. "' not found in the output")
    end
    local out = {found = true}
    for name, pattern in pairs(with.capture or {}) do
      local value = string.match(text, pattern)
      if value == nil then flow.fail("nothing matched '" .. pattern .. "' for " .. name) end
      out[name] = value
    end
    return out
  end,
}
