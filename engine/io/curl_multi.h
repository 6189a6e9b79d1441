#pragma once
// Every HTTP transfer of the process runs on one thread, through libcurl's multi interface: a
// thousand monitors polling their logs are a thousand easy handles on one event loop, not a
// thousand threads blocked in curl_easy_perform. The multi handle also keeps the connections
// open between a monitor's polls (its connection cache), so a poll skips the TCP and TLS
// handshakes. The caller of perform() waits: a fiber parks (engine/io/fiber_scheduler.h), a
// thread blocks. The transfer's callbacks run on the loop's thread, so they must be quick and
// never wait (a streamed body's consumer is not run here: see http_client.cc).
#include <curl/curl.h>

#include <cstddef>

namespace flowrun {

// Runs `easy` (every option already set by the caller) to its end and returns what
// curl_easy_perform would have. Cancellation is the caller's progress callback returning non-zero.
// The caller holds a TransferSlot.
CURLcode perform_transfer(CURL* easy);

// One of the transfers the process may have under way at once (kTransferSlots), held from
// before its easy handle is made until the transfer is done. Ten thousand monitors polling in
// the same second would otherwise each hold a handle and libcurl's 16 KiB receive buffer at
// once; beyond the limit they wait (a fiber parks) holding nothing. The cost: while a host
// hangs, its transfers can hold every slot for up to their time-outs.
class TransferSlot {
 public:
  static constexpr int kTransferSlots = 256;
  TransferSlot();
  ~TransferSlot();
  TransferSlot(const TransferSlot&) = delete;
  TransferSlot& operator=(const TransferSlot&) = delete;
};

// Returns once fewer than TransferSlot::kTransferSlots transfers wait for a slot (at once,
// mostly); the calling fiber parks meanwhile, giving back its stack below this frame. A poll
// loop calls it before each poll, where a waiting monitor's frames fit in one page: 10,000
// monitors starting together wait there, rather than in the slot queue deep in a request with
// two or three pages each (30 MiB at the start). It holds nothing while it waits, so a poll
// whose nested steps poll in turn cannot deadlock on it.
void wait_for_transfer_room();
// How many transfers wait for a slot now; for tests and benchmarks.
size_t transfers_waiting_for_slot();

}  // namespace flowrun
