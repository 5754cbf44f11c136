// A check that one thread at a time holds something: the epoll-oneshot pool's promise that
// no connection is ever handled by two workers at once. It is on in every build, so the
// tests that drive the pool under load check the promise: a violation aborts the server.
#pragma once

#include <atomic>
#include <cstdio>
#include <cstdlib>

namespace mux {

class SoleHolder {
  public:
    // Aborts, naming `what` (an fd), if another thread holds it. The acquire pairs with the
    // previous holder's release: the hand-over edge ThreadSanitizer needs, since it cannot
    // see that epoll passed the connection from one thread to the next.
    void take(int what) {
        if (held_.exchange(true, std::memory_order_acquire)) {
            std::fprintf(stderr, "sole holder: %d taken by a second thread while held\n", what);
            std::abort();
        }
    }
    void release() { held_.store(false, std::memory_order_release); }

  private:
    std::atomic<bool> held_{false};
};

}  // namespace mux
