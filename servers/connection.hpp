// The shared per-connection handler: reading, parsing, replying and counting.
//
// Every model drives connections only through on_readable, on_writable, wants_read and
// wants_write, so two models differ only in how they learn that a socket is ready. The
// handler works on blocking and non-blocking sockets alike: on a blocking socket Retry
// means a send/receive timeout expired (see serve_until_closed).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "server.hpp"

namespace mux {

enum class Next { Keep, Close };
enum class ReadMode {
    Once,        // one recv per readiness report: level-triggered models
    UntilRetry,  // recv until EAGAIN: edge-triggered epoll reports each arrival only once
    UntilShort,  // recv until a recv returns less than asked (the socket was emptied) or EAGAIN
};

class Connection {
  public:
    Connection(int fd, const Server& server);
    ~Connection();  // closes the socket
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    int fd() const { return fd_; }
    const Server& server() const { return server_; }

    // Reads, answers every complete request, and tries to send the answers at once.
    Next on_readable(ReadMode mode);
    // Sends queued answers; if that frees room, answers requests that were waiting.
    Next on_writable();

    // Stop reading while this much output is queued: a client that pipelines requests
    // but never reads replies must not make the server buffer without bound.
    static constexpr size_t kOutputHighWater = 256 * 1024;
    bool wants_read() const {
        return !read_closed_ && !close_after_flush_ && !failed_ &&
               pending_output() < kOutputHighWater;
    }
    bool wants_write() const { return pending_output() > 0 && !failed_; }

  private:
    size_t pending_output() const { return out_.size() - out_sent_; }
    Next next() const;
    Next flush();
    Next flush_and_answer_held_back();
    void answer_buffered_requests();
    // Each consumes complete requests from the front of data, queues their replies, and
    // returns how many bytes it consumed.
    size_t answer_mux1(const uint8_t* data, size_t len);
    size_t answer_http(const uint8_t* data, size_t len);
    void queue(const void* data, size_t len);

    int fd_;
    const Server& server_;
    std::vector<uint8_t> in_;  // bytes of requests not yet complete
    size_t in_used_ = 0;       // in_ is consumed from here
    std::vector<uint8_t> out_;
    size_t out_sent_ = 0;
    bool read_closed_ = false;        // peer sent FIN
    bool close_after_flush_ = false;  // a reply said "close", or the peer broke the protocol
    bool failed_ = false;             // socket error: drop everything
};

// Serves one connection on a blocking socket until it closes or the server stops: the
// whole of the blocking model's per-connection loop, and a fork child's. The stop flag is
// seen only when a blocking call returns; a caller that must notice a stop while the peer is
// silent sets SO_RCVTIMEO/SO_SNDTIMEO, which make a timed-out call return as Retry.
// publish_before_each_wait: add this thread's counts to the totals before every blocking
// call, for a process that nobody waits for at a stop (a fork child).
void serve_until_closed(Connection& connection, bool publish_before_each_wait = false);

}  // namespace mux
