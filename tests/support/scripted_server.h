#pragma once
// Test support: an HTTP server on 127.0.0.1 (port 0) that answers each request as a script says,
// a thread per connection, for tests of connection handling (keep-alive, closes, hangs) that a
// well-behaved engine never shows on demand.

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace tidegate::testing {

// A server on 127.0.0.1 that answers each request as its script says, a thread per connection.
class ScriptedServer {
 public:
  enum class Action {
    kKeepAlive,        // 200, keep the connection open
    kCloseSilently,    // 200 with Keep-Alive: timeout=5, then close (what llama-server does)
    kConnectionClose,  // 200 with Connection: close, then close
    kDropRequest,      // read the request, close without a byte of response
    kHang,             // read the request, never answer
    kRaw,  // write what `Body` returns for the target as the whole answer (status line and
           // headers included, or any bytes at all), then close: engines that answer garbage
  };
  using Script = std::function<Action(int connection, int request_on_connection)>;

  // What a 200 answer's body is, by request target (default "ok"); for kRaw, every byte sent.
  // Called from the connection's thread.
  using Body = std::function<std::string(const std::string& target)>;
  explicit ScriptedServer(Script script, Body body = {});
  ~ScriptedServer();
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  int connections() const { return connections_; }
  int requests() const { return requests_; }  // requests read, answered or not
  int answered() const { return answered_; }

 private:
  void acceptLoop();
  void serve(boost::asio::ip::tcp::socket& sock, int conn);

  Script script_;
  Body body_;
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::thread accept_thread_;
  std::mutex mu_;
  std::vector<std::thread> threads_;
  std::vector<std::shared_ptr<boost::asio::ip::tcp::socket>> sockets_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> connections_{0}, requests_{0}, answered_{0};
};

}  // namespace tidegate::testing
