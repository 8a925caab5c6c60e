// The job store's interface (job_store.h); its engines: file_store.cc.
#include "job_store.h"

namespace deploy {

// Defined here, once, so that the interface's vtable has a home.
JobStore::~JobStore() = default;

}  // namespace deploy
