// Notes about the fork-per-connection model
// - The parent only accepts; each connection gets a child process that serves it with
//   plain blocking I/O. No readiness API is involved, and a slow request stalls only its
//   own connection, never the others: the one model here without head-of-line blocking.
// - The price is fork itself: copying the page tables and marking memory copy-on-write
//   (tens to hundreds of microseconds, growing with the parent's size), a process per
//   connection (kernel stacks, task structs, and every page the child dirties), and a
//   context switch per request as the scheduler moves between processes. It shows in the
//   churn scenario (a fork per request) and in memory per connection.
// - Children inherit the parent's CPU affinity, so all of them compete for the same cores
//   as the other models do.
// - An accepted socket inherits the listener's options, its receive timeout included, and
//   the listener has one (kStopCheckMs) so that a blocked accept notices a stop. A child
//   clears it before serving: with it, every idle child's recv timed out 5 times a second,
//   which at 5,000 idle connections took 0.47 s of the server core's CPU per second (35,000
//   context switches), most of the tree's CPU during a ramp and all of a core by 10,000.
//   Without it an idle child sleeps in recv and costs no wakeup at all.
// - Children are never waited for. SIGCHLD is ignored, so an exiting child releases itself
//   (no zombie) at O(1) cost. waitpid(-1) walks the parent's whole list of children to find
//   the exited one, which made every exit cost O(children): 6% of the server's CPU samples
//   in a ramp to 5,000 connections where the load generator reopened slow connections, 11%
//   while 5,000 closed. The price: an exited child's CPU time is not added to the parent's
//   cutime, so the tree's cost must come from counters that follow children (a cgroup,
//   inherited perf events), not from the parent's /proc. Ignoring SIGCHLD rather than
//   setting SA_NOCLDWAIT does the same and shows in /proc (SigIgn), so a /proc fallback
//   can tell that it would miss the children.
// - No list of children is kept either: each child asks for SIGTERM when the parent dies
//   (PR_SET_PDEATHSIG), so the children end with the server however it ends, even by
//   SIGKILL. The counters line is written just before that, so a request a child answers
//   between the stop and the parent's exit is served but not in the line.
// - A fork that fails (EAGAIN at the pid or process limit, ENOMEM) sheds the connection:
//   it is closed at once and counted, as an fd shortage is in the other models.
// - What paces a ramp to 5,000-10,000 connections on one core is then the model's own
//   price, about 0.3 ms of CPU per connection: the parent's accept and fork (0.12-0.2 ms,
//   mostly building the child's address space: duplicating 41 mappings, their reverse-map
//   links and the page tables of ~300 KiB of anonymous memory, and allocating and zeroing
//   the child's page tables and kernel stack), then the child's first request, about half
//   of it ~30 page faults: code and libraries mapped back in (fork copies no page table
//   entry of a file mapping) and copy-on-write of the stack, heap and data it writes. It
//   grows little with the children already there (0.17 ms per fork with none, 0.21 ms on
//   top of 7,000: zeroing fresh page-table pages, and an O(log n) insert into the parent's
//   anon_vma tree). The parent is already small; a real pre-fork server's is bigger.
// - A child counts in its own memory, as every thread does, and adds its counts to the
//   shared totals before it sends replies and before it waits for its peer: nobody waits
//   for a child at a stop, so a request whose reply has gone out must already be in the
//   totals when the parent writes the line. That is a few atomic adds per request (only the
//   counts that changed), as many as counting straight into shared memory cost.
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <csignal>

#include "connection.hpp"
#include "models.hpp"

namespace mux {

namespace {
[[noreturn]] void serve_in_child(Server& server, int fd, pid_t parent) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(0);  // the parent died before the request above
    close(server.listen_fd());
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    timeval no_timeout{0, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &no_timeout, sizeof no_timeout);
    thread_counters().reset();  // the parent's counts, copied by fork: the parent adds them
    {
        Connection connection(fd, server);
        connection.publish_counts_before_sending();
        serve_until_closed(connection);
    }
    server.add_to_totals();  // the close
    _exit(0);
}
}  // namespace

int run_fork(Server& server) {
    timeval timeout{0, Server::kStopCheckMs * 1000};
    setsockopt(server.listen_fd(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    signal(SIGCHLD, SIG_IGN);  // exited children release themselves: no zombie, no wait
    const pid_t parent = getpid();
    while (!Server::stopping()) {
        Accepted accepted = server.accept_client(/*nonblocking=*/false);
        if (accepted.status != AcceptStatus::Ok) continue;
        pid_t pid = fork();
        if (pid == 0) serve_in_child(server, accepted.fd, parent);
        if (pid < 0) ServerCounters::add(server.counters().rejected_fork_failed);
        close(accepted.fd);
    }
    return 0;
}

}  // namespace mux
