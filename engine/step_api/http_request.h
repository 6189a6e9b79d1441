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

// Whether a failure's message ends with ": " and the server's reason (error_reason of the body).
enum class ReasonInMessage { kNone, kIfBody, kAlways };

// What a request must get back, and how a failure names it.
struct Expectation {
  Json status = Json();   // as status_expected's `expect`; null: any 2xx
  std::string what = {};  // names the request; empty: "METHOD URL"
  ReasonInMessage reason = ReasonInMessage::kIfBody;
};

// Sends `request` and returns the response when its status is expected; otherwise throws
// StepError::http "WHAT returned HTTP N[: reason]" with the server's Retry-After. With
// `request.on_body`, the body of an unexpected response is not handed on: its first 500 bytes
// are kept for the reason. Network failures are thrown as HttpClient::send throws them.
HttpResponse send_expecting(HttpClient& http, const HttpRequest& request, const CancelToken& cancel,
                            const Expectation& expect = {});

// send_expecting's check alone, for a caller that handles some statuses itself first.
void check_expected(const HttpRequest& request, const HttpResponse& response, const Expectation& expect = {});

// Appends `query` (an object of scalars or arrays of scalars) to `url`, percent-encoded.
std::string url_with_query(const std::string& url, const Json& query);
std::string percent_encode(std::string_view text);

}  // namespace flowrun
