#pragma once
// TimedSocket: a TCP socket with a deadline on its operations, as beast::tcp_stream has, with one
// timer a connection that is re-armed lazily instead of a timer operation per read and write.
//
// Why: on the gateway's request path Beast's per-operation timers (a timer wait started and
// cancelled around every read and write, each with its work guards and executor copies) were
// about a tenth of a proxied request's instructions, and its per-socket state ~440 bytes of
// every connection (two an open stream). Here moving a deadline later, which is what every read
// and write does, is a clock read; the timer only wakes when the earliest deadline armed passes,
// and then re-arms for the current one if it moved.
//
// Semantics: expires_after(d) sets the connection's deadline; when it passes the socket is
// closed (as Beast does), so pending operations end with operation_aborted and later ones fail at
// once, and classify(ec) turns such an error into beast::error::timeout — callers pass their
// operation's error through it. The connection is unusable after a timeout. Unlike Beast's, the
// deadline is the connection's, not its operations': it passes whether an operation is pending or
// not, so callers lift it with expires_never() after the operations it bounds (a clock-free
// store: the armed wait, when it fires, finds no deadline and ends). disarm() lifts it and also
// cancels that wait, for a connection put aside (a pooled client connection): a pending wait is
// work that keeps a one-shot io_context's run() from returning.
//
// Threads: one strand (the owner's io_context thread); not thread-safe.

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/error.hpp>

#include <chrono>
#include <memory>
#include <utility>

namespace tidegate {

class TimedSocket {
 public:
  using socket_type = boost::asio::ip::tcp::socket;
  using executor_type = socket_type::executor_type;
  using lowest_layer_type = socket_type::lowest_layer_type;
  using clock = std::chrono::steady_clock;

  explicit TimedSocket(socket_type socket) : socket_(std::move(socket)) {}
  explicit TimedSocket(const executor_type& ex) : socket_(ex) {}
  TimedSocket(const TimedSocket&) = delete;
  TimedSocket& operator=(const TimedSocket&) = delete;
  ~TimedSocket();

  executor_type get_executor() noexcept { return socket_.get_executor(); }
  socket_type& socket() { return socket_; }
  const socket_type& socket() const { return socket_; }
  lowest_layer_type& lowest_layer() { return socket_.lowest_layer(); }
  const lowest_layer_type& lowest_layer() const { return socket_.lowest_layer(); }

  void expires_after(clock::duration d);
  void expires_never() {
    if (state_) state_->deadline = clock::time_point::max();
  }
  void disarm();
  // The deadline passed and the socket was closed for it.
  bool timedOut() const { return state_ && state_->expired; }
  // An operation's error, as beast::error::timeout when the deadline ended it.
  boost::beast::error_code classify(const boost::beast::error_code& ec) const {
    return ec && timedOut() ? boost::beast::error::timeout : ec;
  }

  template <class Buffers, class Token>
  auto async_read_some(const Buffers& buffers, Token&& token) {
    return socket_.async_read_some(buffers, std::forward<Token>(token));
  }
  template <class Buffers, class Token>
  auto async_write_some(const Buffers& buffers, Token&& token) {
    return socket_.async_write_some(buffers, std::forward<Token>(token));
  }

 private:
  // Shared with the pending timer wait, which may run after the socket is gone.
  struct State {
    explicit State(const executor_type& ex, socket_type* s) : timer(ex), socket(s) {}
    boost::asio::steady_timer timer;
    socket_type* socket;  // null once the TimedSocket is destroyed
    clock::time_point deadline = clock::time_point::max();
    clock::time_point armed = clock::time_point::max();  // max: no wait pending
    unsigned generation = 0;                             // bumped to disown a pending wait
    bool expired = false;
  };
  static void arm(const std::shared_ptr<State>& s, clock::time_point at);

  socket_type socket_;
  std::shared_ptr<State> state_;  // made at the first deadline
};

}  // namespace tidegate
