#pragma once
// libcurl easy handles, made once and reused by every request: making and freeing one per
// request was ~5% of the CPU of 10,000 polling monitors (three requests a poll for an
// instance's log). A handle given back is reset (curl_easy_reset: every option, credentials and
// headers included, back to its default) before anyone takes it again; at most
// kIdleEasyHandlesKept wait, the rest are freed, and so is one that still holds a receive
// buffer (its size could not be set again). A handle that ran a stream (curl_easy_perform, on a
// pool thread) keeps its own connection while it waits; libcurl closes it when the handle next
// joins the shared loop. A handle keeps libcurl's caches that outlive options (DNS, TLS
// sessions): what reusing one connection already shares.
#include <curl/curl.h>

#include <cstddef>
#include <memory>

namespace flowrun {

inline constexpr size_t kIdleEasyHandlesKept = 64;

struct GiveBackEasyHandle {
  void operator()(CURL* easy) const;
};
using PooledEasyHandle = std::unique_ptr<CURL, GiveBackEasyHandle>;

// A handle with every option at its default; null when libcurl cannot make one.
PooledEasyHandle take_easy_handle();

// Handles waiting to be taken again; for tests.
size_t idle_easy_handles();

}  // namespace flowrun
