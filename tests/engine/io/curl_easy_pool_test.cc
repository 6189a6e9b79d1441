// Reused easy handles (engine/io/curl_easy_pool.h): a request made on a handle an earlier one
// gave back sends nothing of the earlier one's (its headers, method, body).
#include "engine/io/curl_easy_pool.h"

#include <catch2/catch.hpp>

#include "engine/io/cancel_token.h"
#include "engine/io/http_client.h"
#include "engine/io/step_error.h"
#include "support/sim_server.h"

using namespace flowrun;
using flowrun::test::SimServer;

TEST_CASE("easy handle pool: a reused handle carries nothing of the request before it", "[http][curl]") {
  SimServer sim(Json::parse(R"J({"/a": [{"status": 200, "body": "first answer"}],
                                 "/b": [{"status": 200, "body": "second answer"}]})J"));
  CurlHttpClient client;
  CancelToken never;

  HttpRequest put;
  put.method = "PUT";
  put.url = sim.url("/a");
  put.headers = {{"Authorization", "Bearer not-for-b"}, {"X-Only-A", "1"}};
  put.body = "only for a";
  CHECK(client.send(put, never).body == "first answer");
  CHECK(idle_easy_handles() >= 1);  // the handle went back to be reused

  // Every request now goes through a handle given back, each with a different shape.
  for (int round = 0; round < 3; ++round) {
    HttpRequest get;
    get.url = sim.url("/b");
    HttpResponse r = client.send(get, never);
    CHECK(r.status == 200);
    CHECK(r.body == "second answer");

    HttpRequest post;
    post.method = "POST";
    post.url = sim.url("/b");
    post.body = "payload";
    CHECK(client.send(post, never).body == "second answer");
  }

  auto requests = sim.requests();
  REQUIRE(requests.size() == 7);
  CHECK(requests[0]["headers"].contains("Authorization"));
  for (size_t i = 1; i < requests.size(); ++i) {
    INFO("request " << i << ": " << requests[i].dump());
    CHECK_FALSE(requests[i]["headers"].contains("Authorization"));
    CHECK_FALSE(requests[i]["headers"].contains("X-Only-A"));
    CHECK(requests[i]["method"] == (i % 2 == 1 ? "GET" : "POST"));
    CHECK(requests[i]["body"] == (i % 2 == 1 ? "" : "payload"));
  }
  CHECK(idle_easy_handles() <= kIdleEasyHandlesKept);
}

TEST_CASE("easy handle pool: a handle that kept its receive buffer is freed, not reused", "[http][curl]") {
  // libcurl ends a malformed URL's transfer without freeing the buffer it had made: such a
  // handle would take the next transfer's 4 KiB buffer size no more and read 16 KiB into it.
  const std::string big(64 << 10, 'x');
  SimServer sim(Json{{"/big", Json::array({Json{{"status", 200}, {"body", big}}})}});
  CurlHttpClient client;
  CancelToken never;
  HttpRequest warm;
  warm.url = sim.url("/big");
  CHECK(client.send(warm, never).body == big);
  const size_t idle = idle_easy_handles();
  REQUIRE(idle >= 1);

  HttpRequest malformed;
  malformed.url = "http://bad host name/";
  CHECK_THROWS_AS(client.send(malformed, never), StepError);
  CHECK(idle_easy_handles() == idle - 1);  // taken, and not given back

  for (int i = 0; i < 3; ++i) CHECK(client.send(warm, never).body == big);
}
