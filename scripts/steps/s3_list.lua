-- Lists the objects under a prefix of an S3-compatible bucket (AWS S3, Backblaze B2, MinIO) with
-- ListObjectsV2, following continuation tokens, and returns their keys and URLs. Requests are
-- signed with AWS Signature V4 when keys are given; without keys the bucket must be public.
local function xml_unescape(s)
  return (s:gsub("&lt;", "<"):gsub("&gt;", ">"):gsub("&quot;", '"'):gsub("&apos;", "'"):gsub("&amp;", "&"))
end

local function url_path_escape(s)
  return (s:gsub("[^%w%-%._~/]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

local function wanted(key, extensions)
  if not extensions or #extensions == 0 then return key:sub(-1) ~= "/" end
  local lower = key:lower()
  for _, ext in ipairs(extensions) do
    if lower:sub(-#ext - 1) == "." .. ext:lower() then return true end
  end
  return false
end

return {
  description = "List an S3-compatible bucket prefix (ListObjectsV2, paginated) into keys and URLs",
  params = {
    endpoint = {type = "string", required = true, description = "e.g. https://s3.us-west-004.backblazeb2.com"},
    bucket = {type = "string", required = true},
    prefix = {type = "string", description = "only keys starting with this"},
    region = {type = "string", description = "signing region (default us-east-1)"},
    access_key_id = {type = "string", description = "pass a secret; omit for a public bucket"},
    secret_access_key = {type = "string", description = "pass a secret"},
    extensions = {type = "list", description = "keep only these file extensions, e.g. [mp4, mov]"},
    max_keys = {type = "integer", description = "page size, at most 1000 (default 1000)"},
  },
  run = function(with, flow)
    local endpoint = with.endpoint:gsub("/+$", "")
    local base = endpoint .. "/" .. with.bucket
    local keys, urls, token, pages = {}, {}, nil, 0
    repeat
      local query = {["list-type"] = "2", ["max-keys"] = tostring(with.max_keys or 1000)}
      if with.prefix and with.prefix ~= "" then query.prefix = with.prefix end
      if token then query["continuation-token"] = token end
      local request = {url = base, query = query}
      if with.access_key_id and with.access_key_id ~= "" then
        request.aws_sigv4 = {region = with.region or "us-east-1", access_key_id = with.access_key_id,
                             secret_access_key = with.secret_access_key or ""}
      end
      local r = flow.http(request)
      if r.status ~= 200 then
        local code = r.body:match("<Code>(.-)</Code>") or ""
        local message = r.body:match("<Message>(.-)</Message>") or r.body:sub(1, 200)
        local kind = (r.status == 429 or r.status >= 500) and "transient" or "permanent"
        flow.fail("listing " .. base .. " returned HTTP " .. r.status .. " " .. code .. ": " .. message, kind)
      end
      for block in r.body:gmatch("<Contents>(.-)</Contents>") do
        local key = xml_unescape(block:match("<Key>(.-)</Key>") or "")
        if key ~= "" and wanted(key, with.extensions) then
          table.insert(keys, key)
          table.insert(urls, base .. "/" .. url_path_escape(key))
        end
      end
      pages = pages + 1
      token = nil
      if r.body:match("<IsTruncated>%s*true%s*</IsTruncated>") then
        token = xml_unescape(r.body:match("<NextContinuationToken>(.-)</NextContinuationToken>") or "")
        if token == "" then flow.fail("listing " .. base .. ": truncated page without NextContinuationToken") end
      end
    until not token
    flow.log(#keys .. " objects under " .. base .. "/" .. (with.prefix or "") .. " (" .. pages .. " pages)")
    return {keys = keys, urls = urls, count = #keys}
  end,
}
