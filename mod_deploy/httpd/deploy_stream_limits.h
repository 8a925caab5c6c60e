// How many event streams may be open at once: DeployEventsMaxStreams on the
// whole server, DeployEventsMaxPerClient per client address. A stream holds
// an httpd worker for up to DeployEventsTimeout, so without a bound a flood
// of streams (a hundred browser tabs, or someone unauthenticated) takes
// every worker and starves every other route and site of the server.
//
// The count is shared by the children of one generation of httpd through
// anonymous shared memory made in post_config (inherited by fork): one slot
// per open stream, naming the child's pid and the client's address. A child
// that dies leaves its slots behind; they are reclaimed when a refusal
// would otherwise follow, by checking whether their pid still lives.
#pragma once

#include <apr_pools.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string_view>

#include "status.h"

namespace deploy {

class StreamSlots {
 public:
  // In the parent, before the children are forked. The memory is unmapped
  // when `pool` (pconf) is cleared.
  static Status create(apr_pool_t* pool, uint32_t max_streams, uint32_t max_per_client,
                       std::unique_ptr<StreamSlots>* out);
  ~StreamSlots();
  StreamSlots(const StreamSlots&) = delete;
  StreamSlots& operator=(const StreamSlots&) = delete;

  enum class Refusal { none, server_full, client_full };

  // One open stream; its slot is given back when the Claim is destroyed.
  class Claim {
   public:
    Claim(StreamSlots& slots, std::string_view client);
    ~Claim();
    Claim(const Claim&) = delete;
    Claim& operator=(const Claim&) = delete;
    Refusal refusal() const { return refusal_; }

   private:
    StreamSlots& slots_;
    int32_t slot_ = -1;
    Refusal refusal_ = Refusal::none;
  };

  uint32_t max_streams() const { return max_streams_; }
  uint32_t max_per_client() const { return max_per_client_; }
  // Streams open now (for ?auto and metrics).
  uint32_t open_streams() const;

 private:
  struct Shared;
  StreamSlots() = default;
  Refusal claim(std::string_view client, int32_t* slot);
  void release(int32_t slot);

  Shared* shared_ = nullptr;
  size_t mapped_size_ = 0;
  uint32_t max_streams_ = 0;
  uint32_t max_per_client_ = 0;
};

}  // namespace deploy
