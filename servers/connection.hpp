// The shared per-connection handler: parsing, replying and counting.
//
// Its core takes bytes in and gives bytes out: feed() answers every complete request, and
// take_output()/output_sent() hand the replies to whoever sends them. The completion model
// (io-uring) does its own I/O and calls the core directly. The readiness models drive
// connections through on_readable, on_writable, wants_read and wants_write, thin wrappers
// that do the recv and send around the same core, so two models differ only in how they
// learn that a socket is ready. The wrappers work on blocking and non-blocking sockets
// alike: on a blocking socket Retry means a send/receive timeout expired (see
// serve_until_closed).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
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

    // For a process nobody waits for at a stop (a fork child): add this thread's counts to
    // the totals before every send, and serve_until_closed does before every wait, so a
    // request whose reply has gone out is already in the totals the stats line reads.
    void publish_counts_before_sending() { publish_counts_ = true; }
    bool publishes_counts() const { return publish_counts_; }

    // --- Readiness models: the model learned that the socket is readable or writable.
    // Reads, answers every complete request, and tries to send the answers at once.
    Next on_readable(ReadMode mode);
    // Sends queued answers; if that frees room, answers requests that were waiting.
    Next on_writable();

    // --- The bytes-in/bytes-out core. The caller did the receive; this answers every
    // complete request in the bytes (up to the output high-water mark) and keeps the rest.
    void feed(const uint8_t* data, size_t len);
    void peer_closed();    // a receive returned 0: the peer sent FIN
    void socket_failed();  // a receive or send failed: drop everything, count a reset
    // The bytes to send next. They stay in place and unchanged until output_sent(), so a
    // kernel that sends them later (an io_uring send) reads valid memory. Empty when nothing
    // is queued or the previous take has not been reported yet.
    std::span<const uint8_t> take_output();
    // The last take's first n bytes went out (n < its size: a short send; the rest comes
    // back in the next take). Answers requests held back by the high-water mark.
    void output_sent(size_t n);
    // Close once wants nothing more: all output sent and the peer or protocol is done.
    Next next() const;

    // Stop reading while this much output is queued: a client that pipelines requests
    // but never reads replies must not make the server buffer without bound.
    static constexpr size_t kOutputHighWater = 256 * 1024;
    bool wants_read() const {
        return !read_closed_ && !close_after_flush_ && !failed_ &&
               pending_output() < kOutputHighWater;
    }
    bool wants_write() const { return pending_output() > 0 && !failed_; }

  private:
    size_t pending_output() const { return queued_.size() + (sending_.size() - sending_done_); }
    bool can_answer() const {
        return !close_after_flush_ && !failed_ && pending_output() < kOutputHighWater;
    }
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
    // Replies are appended to queued_. take_output() moves them to sending_, which is never
    // resized while taken, so an asynchronous send never sees its bytes move.
    std::vector<uint8_t> queued_;
    std::vector<uint8_t> sending_;
    size_t sending_done_ = 0;         // sending_ has gone out up to here
    size_t taken_ = 0;                // bytes of the outstanding take; 0 when none
    bool read_closed_ = false;        // peer sent FIN
    bool close_after_flush_ = false;  // a reply said "close", or the peer broke the protocol
    bool failed_ = false;             // socket error: drop everything
    bool publish_counts_ = false;     // see publish_counts_before_sending
};

// Serves one connection on a blocking socket until it closes or the server stops: the
// whole of the blocking model's per-connection loop, a fork child's and a connection
// thread's. The stop flag is seen only when a blocking call returns; a caller that must
// notice a stop while the peer is silent sets SO_RCVTIMEO/SO_SNDTIMEO (a timed-out call
// returns as Retry) or shuts the socket down.
void serve_until_closed(Connection& connection);

// What an edge-triggered reactor does with one epoll report for a connection: send what
// waits when the report says there is room, and read, by the drain rule, when it says there
// is something to read (servers/epoll_et.cpp's notes explain both). Shared by every
// edge-triggered reactor (epoll-et, reuseport), so a change to the rule reaches all of them.
Next on_edge_triggered(Connection& connection, uint32_t epoll_events, EtDrain drain);

}  // namespace mux
