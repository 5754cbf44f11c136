// Notes about the EPOLLONESHOT worker pool
// - --workers threads wait in epoll_wait on one shared epoll set. Each connection is
//   registered with EPOLLONESHOT: once it is reported to one worker, the kernel disables it
//   until that worker re-arms it with epoll_ctl(MOD). So a connection is handled by one
//   thread at a time, with no lock of its own, while other workers serve other connections:
//   a handler that blocks stalls its worker, not the whole server.
// - The re-arm is the price: one epoll_ctl(MOD) per report, a syscall that takes the shared
//   epoll set's mutex (the one every worker's epoll_wait also takes) and polls the socket
//   afresh. A one-thread level-triggered loop pays nothing per report; this pays a syscall
//   per request even when the interest has not changed.
// - The re-arm is level-triggered: MOD checks readiness at once and reports bytes still
//   unread, so one recv per report is enough, as in epoll-lt.
// - Accepting: the listener sits in the same set, also EPOLLONESHOT, so one worker at a
//   time accepts a batch and re-arms it while the others keep serving. (EPOLLEXCLUSIVE is
//   for several epoll sets watching one fd, not several threads waiting on one set.)
// - Lifetime: only the worker holding a connection closes it. Disarmed, it cannot be
//   reported to another worker, and close() takes it out of the set before its fd number
//   can be reused. Every report is checked (SoleHolder): a connection found already held by
//   another thread aborts the server. The check is one uncontended atomic exchange per
//   report, and also the hand-over edge ThreadSanitizer needs.
// - A worker takes at most kMaxEvents reports per wait: enough to amortise the wait when
//   busy, few enough that one slow handler holds back few connections another worker could
//   have served.
#include <sys/epoll.h>

#include <unistd.h>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>

#include "connection.hpp"
#include "models.hpp"
#include "sole_holder.hpp"

#if defined(__SANITIZE_THREAD__)
extern "C" void __tsan_ignore_thread_begin();
extern "C" void __tsan_ignore_thread_end();
#endif

namespace mux {

namespace {
constexpr int kMaxEvents = 8;

struct Slot {
    std::unique_ptr<Connection> connection;  // null for the listener
    int fd = -1;
    SoleHolder holder;
    Slot* prev = nullptr;  // in the list of open connections
    Slot* next = nullptr;
};

// The open connections, so those left at a stop are closed and counted. Touched when a
// connection opens or closes, never per request.
class OpenConnections {
  public:
    OpenConnections() { head_.prev = head_.next = &head_; }
    void add(Slot* slot) {
        std::lock_guard lock(mutex_);
        slot->prev = &head_;
        slot->next = head_.next;
        head_.next->prev = slot;
        head_.next = slot;
    }
    void close(Slot* slot) {
        {
            std::lock_guard lock(mutex_);
            slot->prev->next = slot->next;
            slot->next->prev = slot->prev;
        }
        delete slot;
    }
    void close_all() {
        while (head_.next != &head_) close(head_.next);
    }

  private:
    std::mutex mutex_;
    Slot head_;
};

void take(Slot* slot) {
    slot->holder.take(slot->fd);
}
void release(Slot* slot) {
    slot->holder.release();
}

uint32_t interest(const Connection& c) {
    return (c.wants_read() ? EPOLLIN : 0u) | (c.wants_write() ? EPOLLOUT : 0u) | EPOLLONESHOT;
}

struct Pool {
    int epfd;
    Slot listener;
    OpenConnections open;
};

void accept_batch(Server& server, Pool& pool) {
    server.accept_pending([&](int fd) {
        auto* slot = new Slot;
        slot->connection = std::make_unique<Connection>(fd, server);
        slot->fd = fd;
        pool.open.add(slot);
        epoll_event ev{EPOLLIN | EPOLLONESHOT, {.ptr = slot}};
        epoll_ctl(pool.epfd, EPOLL_CTL_ADD, fd, &ev);
    });
    // Re-armed level-triggered: a batch that stopped at its limit is reported again at once.
    release(&pool.listener);
    epoll_event ev{EPOLLIN | EPOLLONESHOT, {.ptr = &pool.listener}};
    epoll_ctl(pool.epfd, EPOLL_CTL_MOD, server.listen_fd(), &ev);
}

// ThreadSanitizer takes an fd for memory that epoll_ctl reads and close writes. The re-arm
// comes after the release, so a worker that then takes the connection and closes it looks to
// it like a race. It is not one: nobody can be handed the connection before the kernel has
// re-armed it, by which time the re-arm has resolved its fd to the socket (and holds it).
// So the re-arm alone is hidden from ThreadSanitizer, which cannot see that order.
int rearm(int epfd, int fd, epoll_event* ev) {
#if defined(__SANITIZE_THREAD__)
    __tsan_ignore_thread_begin();
    int rc = epoll_ctl(epfd, EPOLL_CTL_MOD, fd, ev);
    __tsan_ignore_thread_end();
    return rc;
#else
    return epoll_ctl(epfd, EPOLL_CTL_MOD, fd, ev);
#endif
}

void handle(Pool& pool, Slot* slot, uint32_t what) {
    Connection& c = *slot->connection;
    Next next = Next::Keep;
    if (what & (EPOLLOUT | EPOLLERR | EPOLLHUP)) next = c.on_writable();
    if (next == Next::Keep && (what & (EPOLLIN | EPOLLERR | EPOLLHUP)))
        next = c.on_readable(ReadMode::Once);
    if (next == Next::Keep) {
        const int fd = c.fd();
        epoll_event ev{interest(c), {.ptr = slot}};
        release(slot);  // before the re-arm: from then on another worker may take it
        if (rearm(pool.epfd, fd, &ev) == 0) return;
        take(slot);  // the re-arm failed (out of kernel memory): nobody else can have it
    }
    pool.open.close(slot);
}

void serve(Server& server, Pool& pool) {
    epoll_event events[kMaxEvents];
    while (!Server::stopping()) {
        int ready = epoll_wait(pool.epfd, events, kMaxEvents, Server::kStopCheckMs);
        if (ready < 0) {
            if (errno == EINTR) continue;
            std::fprintf(stderr, "epoll_wait: %s\n", std::strerror(errno));
            Server::request_stop();
            return;
        }
        for (int i = 0; i < ready; ++i) {
            auto* slot = static_cast<Slot*>(events[i].data.ptr);
            take(slot);
            if (slot == &pool.listener)
                accept_batch(server, pool);
            else
                handle(pool, slot, events[i].events);
        }
    }
}
}  // namespace

int run_epoll_oneshot(Server& server) {
    set_nonblocking(server.listen_fd());
    Pool pool{epoll_create1(EPOLL_CLOEXEC), {}, {}};
    pool.listener.fd = server.listen_fd();
    if (pool.epfd < 0) {
        std::fprintf(stderr, "epoll_create1: %s\n", std::strerror(errno));
        return 1;
    }
    epoll_event listen_event{EPOLLIN | EPOLLONESHOT, {.ptr = &pool.listener}};
    epoll_ctl(pool.epfd, EPOLL_CTL_ADD, server.listen_fd(), &listen_event);
    std::vector<int> listeners(static_cast<size_t>(server.config().workers), server.listen_fd());
    int rc = run_workers(server, listeners, [&](Server& worker, int) { serve(worker, pool); });
    pool.open.close_all();
    close(pool.epfd);
    return rc;
}

}  // namespace mux
