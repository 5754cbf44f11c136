// Notes about the io_uring model
// - Completion-based, not readiness-based: rather than ask which sockets are ready and then
//   make the recv and send calls itself, the program hands the kernel operations and later
//   collects their results. Two rings of memory shared with the kernel carry them: the
//   submission queue (SQ), where the program writes one entry (SQE) per operation, and the
//   completion queue (CQ), where the kernel writes one entry (CQE) per result. Writing SQEs
//   and reading CQEs are plain memory accesses; only io_uring_enter is a syscall.
// - One io_uring_submit_and_wait per loop pass: one kernel entry submits every SQE the pass
//   prepared (sends, re-arms) and waits for a completion; every CQE that arrived meanwhile is
//   read without one. There is no recv, send or epoll_wait syscall at all, so with many busy
//   connections one entry serves many requests and syscalls per request fall far below one.
// - Multishot accept: one SQE on the listener yields a CQE per new connection. Multishot
//   receive: one SQE per connection yields a CQE per arrival for as long as it stays armed,
//   with no re-arm per request. IORING_CQE_F_MORE says the operation is still armed; a CQE
//   without it is the last, and the loop arms it again if still wanted (recv_rearms).
// - Provided buffers: a multishot receive cannot carry a buffer per arrival, so a ring of
//   --io-uring-buffers buffers (default 1024) of kBufferBytes is registered up front and the
//   kernel takes one per completion, naming it in the CQE. Its bytes are fed to the shared
//   handler and it goes back to the ring at once. When the ring is empty the receive ends with
//   ENOBUFS (recv_no_buffers) and is armed again once buffers are back; the bytes wait in the
//   socket.
// - A send is an SQE pointing at the handler's reply bytes, which stay in place until its
//   CQE (take_output/output_sent). It may be short, when the socket buffer had room for
//   part: the CQE says how much went and the next SQE sends the rest. One send per
//   connection is in flight at a time, so bytes keep their order. Replies to every CQE of a
//   pass are sent together, after the pass.
// - A peer that stops reading: its send stays in flight until the socket drains, replies
//   pile up to the handler's high-water mark, and the receive is cancelled so no more
//   requests come in; it is armed again once output falls below the mark.
// - Closing: io_uring holds its own reference to a socket, so close() alone would not end
//   its operations. The receive (and a failed send) is cancelled, and the fd is closed only
//   after the last CQE naming it, so a CQE never meets a reused fd number.
// - At the fd limit the multishot accept fails with EMFILE as soon as it is armed, with or
//   without a pending connection. So the loop then waits with a one-shot poll on the
//   listener and sheds through the shared accept, which keeps a reserve fd for that.
// - IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN (Linux 6.1) where available: completions are
//   processed when the loop asks for them instead of interrupting it.
// - The kernel may refuse io_uring: ENOSYS, or EPERM under a seccomp profile (Docker's
//   default) or kernel.io_uring_disabled. muxserver then exits with status 69 and a
//   "refused" line naming io_uring_unavailable and the errno.
#include <liburing.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <vector>

#include "connection.hpp"
#include "models.hpp"

namespace mux {

namespace {
constexpr unsigned kQueueEntries = 4096;
constexpr unsigned kCompletionEntries = 4 * kQueueEntries;  // multishot: many CQEs per SQE
constexpr unsigned kBufferBytes = kIoUringBufferBytes;
constexpr int kBufferGroup = 0;

enum class Op : uint32_t { Accept = 1, ListenerPoll, Recv, Send, Cancel };
uint64_t tag(Op op, int fd) {
    return uint64_t{static_cast<uint32_t>(op)} << 32 | static_cast<uint32_t>(fd);
}
Op op_of(uint64_t user_data) {
    return static_cast<Op>(user_data >> 32);
}
int fd_of(uint64_t user_data) {
    return static_cast<int>(static_cast<uint32_t>(user_data));
}

struct Slot {
    std::unique_ptr<Connection> connection;
    bool receiving = false;  // a multishot receive is armed
    bool receive_cancelled = false;
    bool received_before = false;  // so arming again counts as a re-arm
    bool sending = false;          // a send is in flight
    bool closing = false;          // waiting for the last CQEs before close
    bool dirty = false;            // in dirty_: decide its next operations after this pass
};

class UringLoop {
  public:
    explicit UringLoop(Server& server)
        : server_(server), buffer_count_(server.config().io_uring_buffers) {}
    ~UringLoop();
    UringLoop(const UringLoop&) = delete;
    UringLoop& operator=(const UringLoop&) = delete;

    bool start();  // false with a message on stderr
    int run();

  private:
    io_uring_sqe* next_sqe();
    void arm_listener();
    void on_cqe(const io_uring_cqe& cqe);
    void on_accepted(int fd);
    void on_receive(Slot& slot, const io_uring_cqe& cqe);
    void on_sent(Slot& slot, const io_uring_cqe& cqe);
    void mark(int fd);
    void update(int fd);
    void reap();
    bool anything_in_flight() const;
    void stop_everything();

    Server& server_;
    const unsigned buffer_count_;  // a power of two
    io_uring ring_{};
    bool ring_ready_ = false;
    io_uring_buf_ring* buffer_ring_ = nullptr;
    std::unique_ptr<uint8_t[]> buffers_;
    int buffers_returned_ = 0;
    std::vector<Slot> slots_;  // by fd
    std::vector<int> dirty_;
    bool accept_armed_ = false;
    bool listener_poll_armed_ = false;
    bool at_fd_limit_ = false;
    bool stopping_ = false;
};

UringLoop::~UringLoop() {
    slots_.clear();  // closes what is left and counts it
    if (!ring_ready_) return;
    if (buffer_ring_ != nullptr) {
        io_uring_unregister_buf_ring(&ring_, kBufferGroup);
        munmap(buffer_ring_, buffer_count_ * sizeof(io_uring_buf));
    }
    io_uring_queue_exit(&ring_);
}

bool UringLoop::start() {
    io_uring_params params{};
    params.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    params.cq_entries = kCompletionEntries;
    int rc = io_uring_queue_init_params(kQueueEntries, &ring_, &params);
    if (rc == -EINVAL) {  // before Linux 6.1: without the task-run flags
        params = {};
        params.flags = IORING_SETUP_CQSIZE;
        params.cq_entries = kCompletionEntries;
        rc = io_uring_queue_init_params(kQueueEntries, &ring_, &params);
    }
    if (rc < 0) {
        std::fprintf(stderr, "io-uring: io_uring_queue_init: %s\n", std::strerror(-rc));
        return false;
    }
    ring_ready_ = true;
    io_uring_register_ring_fd(&ring_);  // saves a file lookup per io_uring_enter; optional

    void* ring_memory = mmap(nullptr, buffer_count_ * sizeof(io_uring_buf), PROT_READ | PROT_WRITE,
                             MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (ring_memory == MAP_FAILED) {
        std::fprintf(stderr, "io-uring: mmap buffer ring: %s\n", std::strerror(errno));
        return false;
    }
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<uint64_t>(ring_memory);
    reg.ring_entries = buffer_count_;
    reg.bgid = kBufferGroup;
    rc = io_uring_register_buf_ring(&ring_, &reg, 0);
    if (rc < 0) {
        munmap(ring_memory, buffer_count_ * sizeof(io_uring_buf));
        std::fprintf(stderr, "io-uring: io_uring_register_buf_ring: %s\n", std::strerror(-rc));
        return false;
    }
    buffer_ring_ = static_cast<io_uring_buf_ring*>(ring_memory);
    io_uring_buf_ring_init(buffer_ring_);
    buffers_ = std::make_unique_for_overwrite<uint8_t[]>(size_t{buffer_count_} * kBufferBytes);
    const int mask = io_uring_buf_ring_mask(buffer_count_);
    for (unsigned i = 0; i < buffer_count_; ++i)
        io_uring_buf_ring_add(buffer_ring_, buffers_.get() + size_t{i} * kBufferBytes, kBufferBytes,
                              static_cast<unsigned short>(i), mask, static_cast<int>(i));
    io_uring_buf_ring_advance(buffer_ring_, static_cast<int>(buffer_count_));
    set_nonblocking(server_.listen_fd());  // the shedding path's accept must not block
    return true;
}

io_uring_sqe* UringLoop::next_sqe() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    while (sqe == nullptr) {  // the SQ is full: hand it to the kernel now, not at the pass's end
        io_uring_submit(&ring_);
        sqe = io_uring_get_sqe(&ring_);
    }
    return sqe;
}

void UringLoop::arm_listener() {
    if (stopping_ || accept_armed_ || listener_poll_armed_) return;
    io_uring_sqe* sqe = next_sqe();
    if (at_fd_limit_) {
        io_uring_prep_poll_add(sqe, server_.listen_fd(), POLLIN);
        io_uring_sqe_set_data64(sqe, tag(Op::ListenerPoll, server_.listen_fd()));
        listener_poll_armed_ = true;
    } else {
        io_uring_prep_multishot_accept(sqe, server_.listen_fd(), nullptr, nullptr, SOCK_CLOEXEC);
        io_uring_sqe_set_data64(sqe, tag(Op::Accept, server_.listen_fd()));
        accept_armed_ = true;
    }
}

void UringLoop::on_accepted(int fd) {
    if (static_cast<size_t>(fd) >= slots_.size()) slots_.resize(static_cast<size_t>(fd) + 1024);
    slots_[static_cast<size_t>(fd)] = Slot{std::make_unique<Connection>(fd, server_)};
    mark(fd);
}

void UringLoop::on_cqe(const io_uring_cqe& cqe) {
    const uint64_t data = io_uring_cqe_get_data64(&cqe);
    const bool more = (cqe.flags & IORING_CQE_F_MORE) != 0;
    switch (op_of(data)) {
        case Op::Accept:
            if (!more) accept_armed_ = false;
            if (cqe.res >= 0) {
                server_.adopt_accepted(cqe.res);
                on_accepted(cqe.res);
            } else if (cqe.res == -EMFILE || cqe.res == -ENFILE) {
                at_fd_limit_ = true;
                if (more) {  // end it, so it cannot report EMFILE over and over
                    io_uring_sqe* sqe = next_sqe();
                    io_uring_prep_cancel64(sqe, data, 0);
                    io_uring_sqe_set_data64(sqe, tag(Op::Cancel, -1));
                }
            }
            break;
        case Op::ListenerPoll:
            listener_poll_armed_ = false;
            if (!stopping_) server_.accept_pending([&](int fd) { on_accepted(fd); });
            at_fd_limit_ = false;  // the multishot accept says so again if it still is
            break;
        case Op::Recv:
            on_receive(slots_[static_cast<size_t>(fd_of(data))], cqe);
            mark(fd_of(data));
            break;
        case Op::Send:
            on_sent(slots_[static_cast<size_t>(fd_of(data))], cqe);
            mark(fd_of(data));
            break;
        case Op::Cancel:
            break;
    }
}

void UringLoop::on_receive(Slot& slot, const io_uring_cqe& cqe) {
    if ((cqe.flags & IORING_CQE_F_MORE) == 0) slot.receiving = false;
    Connection& c = *slot.connection;
    if (cqe.flags & IORING_CQE_F_BUFFER) {
        const auto id = static_cast<unsigned short>(cqe.flags >> IORING_CQE_BUFFER_SHIFT);
        uint8_t* bytes = buffers_.get() + size_t{id} * kBufferBytes;
        if (cqe.res > 0 && !slot.closing) c.feed(bytes, static_cast<size_t>(cqe.res));
        io_uring_buf_ring_add(buffer_ring_, bytes, kBufferBytes, id,
                              io_uring_buf_ring_mask(buffer_count_), buffers_returned_++);
    }
    if (cqe.res == 0)
        c.peer_closed();
    else if (cqe.res == -ENOBUFS)
        ServerCounters::add(server_.counters().recv_no_buffers);
    else if (cqe.res < 0 && cqe.res != -ECANCELED)
        c.socket_failed();
}

void UringLoop::on_sent(Slot& slot, const io_uring_cqe& cqe) {
    slot.sending = false;
    Connection& c = *slot.connection;
    c.output_sent(cqe.res > 0 ? static_cast<size_t>(cqe.res) : 0);
    if (cqe.res < 0 && cqe.res != -ECANCELED) c.socket_failed();
}

void UringLoop::mark(int fd) {
    Slot& slot = slots_[static_cast<size_t>(fd)];
    if (slot.dirty) return;
    slot.dirty = true;
    dirty_.push_back(fd);
}

// What a connection needs next, once every CQE of the pass has been seen: a send, a
// receive armed or cancelled, or its close.
void UringLoop::update(int fd) {
    Slot& slot = slots_[static_cast<size_t>(fd)];
    slot.dirty = false;
    Connection& c = *slot.connection;
    if (!slot.closing && (stopping_ || c.next() == Next::Close)) {
        slot.closing = true;
        if (slot.receiving && !slot.receive_cancelled) {
            io_uring_sqe* sqe = next_sqe();
            io_uring_prep_cancel64(sqe, tag(Op::Recv, fd), 0);
            io_uring_sqe_set_data64(sqe, tag(Op::Cancel, fd));
            slot.receive_cancelled = true;
        }
        if (slot.sending) {  // only after a failure: a send to a live peer completes by itself
            io_uring_sqe* sqe = next_sqe();
            io_uring_prep_cancel64(sqe, tag(Op::Send, fd), 0);
            io_uring_sqe_set_data64(sqe, tag(Op::Cancel, fd));
        }
    }
    if (slot.closing) {
        if (!slot.receiving && !slot.sending) slot.connection.reset();  // closes, counts
        return;
    }
    if (!slot.sending) {
        std::span<const uint8_t> out = c.take_output();
        if (!out.empty()) {
            io_uring_sqe* sqe = next_sqe();
            io_uring_prep_send(sqe, fd, out.data(), out.size(), MSG_NOSIGNAL);
            io_uring_sqe_set_data64(sqe, tag(Op::Send, fd));
            slot.sending = true;
        }
    }
    if (c.wants_read() && !slot.receiving) {
        io_uring_sqe* sqe = next_sqe();
        io_uring_prep_recv_multishot(sqe, fd, nullptr, 0, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = kBufferGroup;
        io_uring_sqe_set_data64(sqe, tag(Op::Recv, fd));
        slot.receiving = true;
        slot.receive_cancelled = false;
        if (slot.received_before) ServerCounters::add(server_.counters().recv_rearms);
        slot.received_before = true;
    } else if (!c.wants_read() && slot.receiving && !slot.receive_cancelled) {
        // Above the high-water mark, or nothing more will be answered: take no more in.
        io_uring_sqe* sqe = next_sqe();
        io_uring_prep_cancel64(sqe, tag(Op::Recv, fd), 0);
        io_uring_sqe_set_data64(sqe, tag(Op::Cancel, fd));
        slot.receive_cancelled = true;
    }
}

void UringLoop::reap() {
    unsigned head;
    unsigned seen = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring_, head, cqe) {
        on_cqe(*cqe);
        ++seen;
    }
    io_uring_cq_advance(&ring_, seen);
    if (buffers_returned_ > 0) {
        io_uring_buf_ring_advance(buffer_ring_, buffers_returned_);
        buffers_returned_ = 0;
    }
    // Dirty connections are updated in order; update() never marks another one.
    for (int fd : dirty_) update(fd);
    dirty_.clear();
    arm_listener();
}

int UringLoop::run() {
    arm_listener();
    while (!Server::stopping()) {
        __kernel_timespec timeout{0, Server::kStopCheckMs * 1000000LL};
        io_uring_cqe* first = nullptr;
        int rc = io_uring_submit_and_wait_timeout(&ring_, &first, 1, &timeout, nullptr);
        if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN) {
            std::fprintf(stderr, "io-uring: io_uring_submit_and_wait: %s\n", std::strerror(-rc));
            return 1;
        }
        reap();
    }
    stop_everything();
    return 0;
}

bool UringLoop::anything_in_flight() const {
    if (accept_armed_ || listener_poll_armed_) return true;
    for (const Slot& slot : slots_)
        if (slot.receiving || slot.sending) return true;
    return false;
}

// Cancels every operation and reaps until none is left, so no send still reads a reply
// buffer when the connections are freed. Bounded: a stop always ends.
void UringLoop::stop_everything() {
    stopping_ = true;
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(sqe, tag(Op::Cancel, -1));
    for (size_t fd = 0; fd < slots_.size(); ++fd)
        if (slots_[fd].connection) mark(static_cast<int>(fd));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (anything_in_flight() && std::chrono::steady_clock::now() < deadline) {
        __kernel_timespec timeout{0, 100 * 1000000LL};
        io_uring_cqe* first = nullptr;
        io_uring_submit_and_wait_timeout(&ring_, &first, 1, &timeout, nullptr);
        reap();
    }
}

// Parses "6.1.0-..." into 601.
int kernel_version() {
    utsname name{};
    if (uname(&name) != 0) return 0;
    int major = 0, minor = 0;
    std::sscanf(name.release, "%d.%d", &major, &minor);
    return major * 100 + minor;
}

std::string io_uring_disabled_setting() {
    std::ifstream in("/proc/sys/kernel/io_uring_disabled");
    std::string value;
    if (!(in >> value)) return "";
    return "; kernel.io_uring_disabled = " + value;
}
}  // namespace

bool io_uring_available(Unavailable* why) {
    why->reason = "io_uring_unavailable";
    io_uring ring{};
    int rc = io_uring_queue_init(8, &ring, 0);
    if (rc < 0) {
        why->error = -rc;
        why->detail = "io_uring_setup failed";
        if (rc == -ENOSYS) why->detail += ": this kernel was built without io_uring";
        if (rc == -EPERM)
            why->detail +=
                ": refused by a seccomp filter (Docker's default profile blocks it) "
                "or by kernel.io_uring_disabled" +
                io_uring_disabled_setting();
        return false;
    }
    io_uring_queue_exit(&ring);
    if (int version = kernel_version(); version < 600) {
        why->error = EINVAL;  // what the kernel says to a multishot receive it does not know
        why->detail = "multishot receive needs Linux 6.0; this kernel is " +
                      std::to_string(version / 100) + "." + std::to_string(version % 100);
        return false;
    }
    return true;
}

int run_io_uring(Server& server) {
    UringLoop loop(server);
    if (!loop.start()) return 1;
    return loop.run();
}

}  // namespace mux
