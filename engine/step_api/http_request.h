#pragma once
// The HTTP vocabulary steps share (the http step, queue, flow.http, the Vast client): a request
// written as YAML/JSON, and what a step expects back. engine/io/http_client.h only sends.
#include <string>
#include <string_view>

#include "engine/io/http_client.h"
#include "engine/io/json.h"

namespace flowrun {

// A request from {url, method, headers, query, json | body, aws_sigv4}, as the http step and
// flow.http take it: `method` defaults to `default_method`, a `json` body sets Content-Type, and
// values that are not strings (header values, a body) are written as JSON. aws_sigv4 is
// {region, access_key_id, secret_access_key, service = "s3"}. `max_body` (byte_size_param) bounds
// the response body. The timeout is left to the caller.
HttpRequest request_from_json(const Json& spec, const std::string& default_method);

// Whether `status` is what a step's `expect` asks for: a status, a list of them, or (null) any 2xx.
bool status_expected(int status, const Json& expect);

// Appends `query` (an object of scalars or arrays of scalars) to `url`, percent-encoded.
std::string url_with_query(const std::string& url, const Json& query);
std::string percent_encode(std::string_view text);

}  // namespace flowrun
