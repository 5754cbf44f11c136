// What /proc says about a server process: CPU time, children, address-space peak. Used to
// check for bugs (spinning, zombies, allocating a declared length), never for timings.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

namespace mux::test {

// utime + stime of one process, in clock ticks (sysconf(_SC_CLK_TCK) per second).
std::optional<uint64_t> cpu_ticks(pid_t pid);
// The state letter of /proc/PID/stat (R running, S sleeping, Z zombie, ...).
std::optional<char> state(pid_t pid);
// Polls state until it is S (asleep in an interruptible wait) or the timeout passes.
bool wait_until_sleeping(pid_t pid, std::chrono::milliseconds timeout);
// Processes whose parent is pid, zombies included (a zombie is still its parent's child).
std::vector<pid_t> child_pids(pid_t pid);
// Polls child_pids until it is empty or the timeout passes. Returns the last list seen.
std::vector<pid_t> wait_for_no_children(pid_t pid, std::chrono::milliseconds timeout);
// The inode of the server's end of a connected TCP socket, found in /proc/net/tcp and tcp6 by
// its ports: 0 while the connection waits in the accept queue (a socket gets its inode when
// accept takes it), nullopt if the kernel has no such socket.
std::optional<uint64_t> peer_socket_inode(int client_fd);
// Polls peer_socket_inode until the server has accepted the connection; nullopt on timeout.
std::optional<uint64_t> wait_for_accepted_inode(int client_fd, std::chrono::milliseconds timeout);
// Whether pid or one of its children has the socket with this inode open.
bool tree_holds_socket(pid_t pid, uint64_t inode);
// Polls tree_holds_socket until it equals `held` or the timeout passes; true if it did.
bool wait_until_tree_holds_socket(pid_t pid, uint64_t inode, bool held,
                                  std::chrono::milliseconds timeout);
// VmPeak from /proc/PID/status: the largest the address space has been, in KiB.
std::optional<uint64_t> vm_peak_kib(pid_t pid);
// VmHWM from /proc/PID/status: the largest the resident set has been, in KiB.
std::optional<uint64_t> vm_hwm_kib(pid_t pid);
// The process's threads (/proc/PID/task).
std::vector<pid_t> thread_ids(pid_t pid);

}  // namespace mux::test
