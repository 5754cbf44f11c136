// Exit records from the kernel's taskstats interface (generic netlink): the one place where a
// process that exited and was reaped still tells how often it was switched out. /proc forgets
// such a process as soon as it is reaped. See task_exits.cpp for how it is read and its limits.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace mux::sweep {

struct TaskExit {  // one exiting thread
    pid_t pid = 0;
    pid_t tgid = 0;
    pid_t ppid = 0;  // the thread group's parent at exit
    uint64_t voluntary_switches = 0;
    uint64_t involuntary_switches = 0;
};

struct TaskExits {
    std::vector<TaskExit> exits;
    uint64_t lost_batches = 0;  // the socket overflowed (ENOBUFS): records are missing
};

// Listens for the exit of every task on every CPU of the machine (needs CAP_NET_ADMIN).
class TaskExitRecorder {
  public:
    TaskExitRecorder();
    ~TaskExitRecorder();
    TaskExitRecorder(const TaskExitRecorder&) = delete;
    TaskExitRecorder& operator=(const TaskExitRecorder&) = delete;

    bool ok() const { return fd_ >= 0; }
    const std::string& error() const { return error_; }
    // Every record the kernel queued since the previous take(). Call it just before the start
    // sample (to drop older exits) and just after the end sample.
    TaskExits take();

  private:
    void drain(TaskExits& into);
    int fd_ = -1;
    uint16_t family_ = 0;
    std::string cpu_mask_;
    std::string error_;
};

}  // namespace mux::sweep
