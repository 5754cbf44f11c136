// Notes about taskstats exit records
// - A listener registers a CPU mask (TASKSTATS_CMD_ATTR_REGISTER_CPUMASK) and then receives,
//   for every task that exits on those CPUs, one TASKSTATS_TYPE_AGGR_PID message holding the
//   task's struct taskstats (a second, per thread group, only for multi-threaded groups).
//   The kernel sends it from do_exit before the task becomes a zombie, so by the time a
//   process can be reaped (and vanish from /proc) its record is already queued here.
// - Registering needs CAP_NET_ADMIN. Records come for the whole machine, not just our tree;
//   the caller filters them by ancestry (see cost_between).
// - There is no reader thread: records wait in the socket's receive buffer, enlarged to
//   kReceiveBufferBytes with SO_RCVBUFFORCE (root) so that a window of a few seconds of fork
//   churn fits. An overflow shows as ENOBUFS and is counted in lost_batches, never hidden.
// - struct taskstats only grows at its end (version 13 in our headers, newer kernels send
//   more), so the prefix we know is copied and the rest ignored.
#include "task_exits.hpp"

#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/taskstats.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace mux::sweep {

namespace {

constexpr int kReceiveBufferBytes = 32 << 20;

const nlattr* attr_at(const char* at) {
    return reinterpret_cast<const nlattr*>(at);
}

// Calls visit(type, payload, payload_len) for each attribute in [begin, begin+len).
template <typename Visit>
void for_each_attr(const char* begin, size_t len, Visit visit) {
    while (len >= NLA_HDRLEN) {
        nlattr header;
        std::memcpy(&header, attr_at(begin), sizeof header);
        if (header.nla_len < NLA_HDRLEN || header.nla_len > len) return;
        visit(header.nla_type, begin + NLA_HDRLEN, size_t{header.nla_len} - NLA_HDRLEN);
        size_t step = std::min<size_t>(NLA_ALIGN(header.nla_len), len);
        begin += step;
        len -= step;
    }
}

bool send_request(int fd, uint16_t family, uint8_t command, uint16_t attr,
                  const std::string& value) {
    alignas(nlmsghdr) char buffer[256] = {};
    size_t attr_len = NLA_HDRLEN + value.size() + 1;
    size_t total = NLMSG_LENGTH(GENL_HDRLEN) + NLA_ALIGN(attr_len);
    if (total > sizeof buffer) return false;
    auto* message = reinterpret_cast<nlmsghdr*>(buffer);
    message->nlmsg_len = static_cast<uint32_t>(total);
    message->nlmsg_type = family;
    message->nlmsg_flags = NLM_F_REQUEST;
    auto* generic = static_cast<genlmsghdr*>(NLMSG_DATA(message));
    generic->cmd = command;
    generic->version = 1;
    nlattr header{static_cast<uint16_t>(attr_len), attr};
    char* payload = reinterpret_cast<char*>(generic) + GENL_HDRLEN;
    std::memcpy(payload, &header, sizeof header);
    std::memcpy(payload + NLA_HDRLEN, value.c_str(), value.size() + 1);
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    return sendto(fd, buffer, total, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) ==
           static_cast<ssize_t>(total);
}

uint16_t resolve_family(int fd) {
    if (!send_request(fd, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, CTRL_ATTR_FAMILY_NAME,
                      TASKSTATS_GENL_NAME))
        return 0;
    alignas(nlmsghdr) char buffer[8192];
    ssize_t n = recv(fd, buffer, sizeof buffer, 0);
    auto* message = reinterpret_cast<nlmsghdr*>(buffer);
    if (n <= 0 || !NLMSG_OK(message, static_cast<unsigned>(n))) return 0;
    if (message->nlmsg_type != GENL_ID_CTRL) return 0;  // NLMSG_ERROR: no such family
    uint16_t family = 0;
    const char* attrs = static_cast<const char*>(NLMSG_DATA(message)) + GENL_HDRLEN;
    for_each_attr(attrs, message->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN),
                  [&](uint16_t type, const char* payload, size_t len) {
                      if (type == CTRL_ATTR_FAMILY_ID && len >= sizeof family)
                          std::memcpy(&family, payload, sizeof family);
                  });
    return family;
}

void parse_exit(const nlmsghdr* message, std::vector<TaskExit>& exits) {
    const char* attrs = static_cast<const char*>(NLMSG_DATA(message)) + GENL_HDRLEN;
    for_each_attr(
        attrs, message->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN),
        [&](uint16_t type, const char* nested, size_t nested_len) {
            if (type != TASKSTATS_TYPE_AGGR_PID) return;  // AGGR_TGID would repeat
            for_each_attr(nested, nested_len, [&](uint16_t inner, const char* payload, size_t len) {
                if (inner != TASKSTATS_TYPE_STATS) return;
                taskstats stats{};
                std::memcpy(&stats, payload, std::min(len, sizeof stats));
                exits.push_back({static_cast<pid_t>(stats.ac_pid),
                                 static_cast<pid_t>(stats.ac_tgid),
                                 static_cast<pid_t>(stats.ac_ppid), stats.nvcsw, stats.nivcsw});
            });
        });
}

}  // namespace

TaskExitRecorder::TaskExitRecorder() {
    fd_ = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
    if (fd_ < 0) {
        error_ = std::string("netlink socket: ") + std::strerror(errno);
        return;
    }
    int size = kReceiveBufferBytes;
    if (setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0)
        setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);  // capped by rmem_max
    sockaddr_nl self{};
    self.nl_family = AF_NETLINK;
    family_ =
        bind(fd_, reinterpret_cast<sockaddr*>(&self), sizeof self) == 0 ? resolve_family(fd_) : 0;
    long cpus = sysconf(_SC_NPROCESSORS_CONF);
    cpu_mask_ = "0-" + std::to_string(std::max(cpus, 1L) - 1);
    if (family_ == 0 || !send_request(fd_, family_, TASKSTATS_CMD_GET,
                                      TASKSTATS_CMD_ATTR_REGISTER_CPUMASK, cpu_mask_)) {
        error_ = "taskstats unavailable (family " + std::to_string(family_) + ", errno " +
                 std::to_string(errno) + ")";
        close(fd_);
        fd_ = -1;
        return;
    }
    // A refused registration (no CAP_NET_ADMIN) is queued as an error before sendto returns.
    TaskExits first;
    drain(first);
}

TaskExitRecorder::~TaskExitRecorder() {
    if (fd_ < 0) return;
    send_request(fd_, family_, TASKSTATS_CMD_GET, TASKSTATS_CMD_ATTR_DEREGISTER_CPUMASK, cpu_mask_);
    close(fd_);
}

TaskExits TaskExitRecorder::take() {
    TaskExits taken;
    if (fd_ >= 0) drain(taken);
    return taken;
}

void TaskExitRecorder::drain(TaskExits& into) {
    alignas(nlmsghdr) static thread_local char buffer[1 << 16];
    for (;;) {
        ssize_t n = recv(fd_, buffer, sizeof buffer, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == ENOBUFS) {
            ++into.lost_batches;
            continue;
        }
        if (n <= 0) return;
        auto left = static_cast<unsigned>(n);
        for (auto* message = reinterpret_cast<nlmsghdr*>(buffer); NLMSG_OK(message, left);
             message = NLMSG_NEXT(message, left)) {
            if (message->nlmsg_type == NLMSG_ERROR) {
                nlmsgerr failure{};
                std::memcpy(&failure, NLMSG_DATA(message), sizeof failure);
                if (failure.error == 0) continue;  // an acknowledgement
                error_ =
                    std::string("taskstats registration refused: ") + std::strerror(-failure.error);
                close(fd_);
                fd_ = -1;
                return;
            }
            if (message->nlmsg_type == family_) parse_exit(message, into.exits);
        }
    }
}

}  // namespace mux::sweep
