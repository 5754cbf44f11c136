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
// - Children are reaped only after SIGCHLD says one exited: waitpid(-1) walks the whole
//   list of children, so calling it before every accept made the ramp to 10,000
//   connections quadratic (4,000 connected in 30 s). SIGCHLD also interrupts the blocking
//   accept, so a zombie is reaped at once, not when the next client arrives.
//   The counters live in shared memory, so children add to the parent's numbers.
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <unordered_set>

#include "connection.hpp"
#include "models.hpp"

namespace mux {

namespace {
volatile sig_atomic_t g_child_exited = 0;
void on_child_exit(int) {
    g_child_exited = 1;
}

void reap_children(std::unordered_set<pid_t>& children, int options) {
    for (;;) {
        pid_t pid = waitpid(-1, nullptr, options);
        if (pid <= 0) return;
        children.erase(pid);
    }
}

[[noreturn]] void serve_in_child(Server& server, int fd) {
    close(server.listen_fd());
    // The parent stops a child with SIGTERM, which simply ends it (the shared counters are
    // already current).
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    timeval no_timeout{0, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &no_timeout, sizeof no_timeout);
    {
        Connection connection(fd, server);
        serve_until_closed(connection);
    }
    _exit(0);
}
}  // namespace

int run_fork(Server& server) {
    timeval timeout{0, Server::kStopCheckMs * 1000};
    setsockopt(server.listen_fd(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    // No SA_RESTART: SIGCHLD interrupts accept, so the loop reaps straight away.
    struct sigaction on_exit {};
    on_exit.sa_handler = on_child_exit;
    sigemptyset(&on_exit.sa_mask);
    sigaction(SIGCHLD, &on_exit, nullptr);
    std::unordered_set<pid_t> children;
    while (!Server::stopping()) {
        if (g_child_exited) {
            g_child_exited = 0;  // cleared before reaping, so an exit during it is not lost
            reap_children(children, WNOHANG);
        }
        Accepted accepted = server.accept_client(/*nonblocking=*/false);
        if (accepted.status != AcceptStatus::Ok) continue;
        pid_t pid = fork();
        if (pid == 0) serve_in_child(server, accepted.fd);
        if (pid < 0) ServerCounters::add(server.counters().rejected_fork_failed);
        if (pid > 0) children.insert(pid);
        close(accepted.fd);
    }
    for (pid_t child : children) kill(child, SIGTERM);
    while (!children.empty()) {
        pid_t pid = waitpid(-1, nullptr, 0);
        if (pid < 0 && errno == ECHILD) break;
        if (pid > 0) children.erase(pid);
    }
    return 0;
}

}  // namespace mux
