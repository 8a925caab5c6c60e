#include "deploy_stream_limits.h"

#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>
#include <string>

namespace deploy {
namespace {

constexpr size_t kClientMax = 64;  // an IPv6 address with a zone fits
// The critical section is a scan of the slots; a holder that takes longer
// than this is gone or stuck, and the stream is refused rather than wait.
constexpr long kLockWaitNanos = 1000000000L;

struct Slot {
  pid_t pid;  // 0: free
  char client[kClientMax];
};

}  // namespace

struct StreamSlots::Shared {
  pthread_mutex_t mutex;
  uint32_t capacity;
  Slot slots[1];  // `capacity` of them
};

Status StreamSlots::create(apr_pool_t* pool, uint32_t max_streams, uint32_t max_per_client,
                           std::unique_ptr<StreamSlots>* out) {
  std::unique_ptr<StreamSlots> slots(new StreamSlots());
  slots->max_streams_ = max_streams;
  slots->max_per_client_ = max_per_client;
  slots->mapped_size_ = sizeof(Shared) + sizeof(Slot) * (max_streams ? max_streams - 1 : 0);
  void* memory =
      mmap(nullptr, slots->mapped_size_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED)
    return Status::error(std::string("cannot map the event streams' slots: ") + strerror(errno));
  slots->shared_ = static_cast<Shared*>(memory);  // zero-filled: every slot free
  slots->shared_->capacity = max_streams;
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  // A child killed while it holds the mutex must not wedge the others.
  pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  const int rc = pthread_mutex_init(&slots->shared_->mutex, &attr);
  pthread_mutexattr_destroy(&attr);
  if (rc != 0) return Status::error(std::string("cannot make a shared mutex: ") + strerror(rc));
  StreamSlots* raw = slots.get();
  apr_pool_cleanup_register(
      pool, raw,
      [](void* p) -> apr_status_t {
        auto* s = static_cast<StreamSlots*>(p);
        if (s->shared_) munmap(s->shared_, s->mapped_size_);
        s->shared_ = nullptr;
        return APR_SUCCESS;
      },
      apr_pool_cleanup_null);
  *out = std::move(slots);
  return Status::ok();
}

StreamSlots::~StreamSlots() = default;  // unmapped by the pool cleanup

StreamSlots::Refusal StreamSlots::claim(std::string_view client, int32_t* slot) {
  if (!shared_) return Refusal::none;  // no limits (the pool was cleared under us)
  if (client.size() >= kClientMax) client = client.substr(0, kClientMax - 1);
  timespec deadline;
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  deadline.tv_sec += kLockWaitNanos / 1000000000L;
  int rc = pthread_mutex_clocklock(&shared_->mutex, CLOCK_MONOTONIC, &deadline);
  if (rc == EOWNERDEAD) {
    pthread_mutex_consistent(&shared_->mutex);
    rc = 0;
  }
  if (rc != 0) return Refusal::server_full;
  Refusal refusal = Refusal::none;
  for (int pass = 0; pass < 2; ++pass) {
    uint32_t open = 0, of_client = 0;
    int32_t free_slot = -1;
    for (uint32_t i = 0; i < shared_->capacity; ++i) {
      Slot& s = shared_->slots[i];
      if (s.pid == 0) {
        if (free_slot < 0) free_slot = int32_t(i);
        continue;
      }
      ++open;
      if (client == s.client) ++of_client;
    }
    refusal = open >= max_streams_ || free_slot < 0 ? Refusal::server_full
              : of_client >= max_per_client_        ? Refusal::client_full
                                                    : Refusal::none;
    if (refusal == Refusal::none) {
      Slot& s = shared_->slots[free_slot];
      s.pid = getpid();
      memcpy(s.client, client.data(), client.size());
      s.client[client.size()] = '\0';
      *slot = free_slot;
      break;
    }
    if (pass == 0)  // before refusing, take back the slots of children that died
      for (uint32_t i = 0; i < shared_->capacity; ++i) {
        Slot& s = shared_->slots[i];
        if (s.pid != 0 && kill(s.pid, 0) != 0 && errno == ESRCH) s.pid = 0;
      }
  }
  pthread_mutex_unlock(&shared_->mutex);
  return refusal;
}

void StreamSlots::release(int32_t slot) {
  if (!shared_ || slot < 0 || uint32_t(slot) >= shared_->capacity) return;
  // A plain store: only this stream owns the slot, and a reader that sees
  // it a moment late only counts one stream too many.
  __atomic_store_n(&shared_->slots[slot].pid, 0, __ATOMIC_RELEASE);
}

uint32_t StreamSlots::open_streams() const {
  if (!shared_) return 0;
  uint32_t open = 0;
  for (uint32_t i = 0; i < shared_->capacity; ++i)
    open += __atomic_load_n(&shared_->slots[i].pid, __ATOMIC_ACQUIRE) != 0;
  return open;
}

StreamSlots::Claim::Claim(StreamSlots& slots, std::string_view client) : slots_(slots) {
  refusal_ = slots_.claim(client, &slot_);
}

StreamSlots::Claim::~Claim() { slots_.release(slot_); }

}  // namespace deploy
