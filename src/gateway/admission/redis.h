#pragma once
// A pipelined Redis client for one io_context: hiredis formats commands and parses replies
// (RESP), Asio does the I/O. Commands from any number of coroutines of that io_context share one
// connection and are answered in order, so a worker pays one round trip per request however many
// requests it has in flight. Not thread-safe: call it from its executor only.
//
// Failure: call() returns an error on connect failure, on a lost connection (every pending
// command fails) and after `timeout_s` (the late reply is read and discarded). After a failed
// connect, calls fail at once for `retry_after_s` instead of waiting on a dead server each time.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "api/resources.h"
#include "common/result.h"

struct redisReader;

namespace tidegate::gateway::admission {

struct RedisReply {
  enum class Type { kString, kArray, kInteger, kNil, kStatus, kError } type = Type::kNil;
  long long integer = 0;
  std::string str;  // string, status or error text
  std::vector<RedisReply> elements;
};

class RedisClient {
 public:
  boost::asio::any_io_executor executor() const { return ex_; }
  RedisClient(boost::asio::any_io_executor ex, api::HostPort address, double timeout_s,
              double retry_after_s = 1.0);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Sends `argv` (a command and its arguments) and returns the reply; an error reply from the
  // server is a RedisReply of Type::kError, not a failure.
  boost::asio::awaitable<Result<RedisReply>> call(std::vector<std::string> argv);
  void close();

 private:
  struct Pending;
  boost::asio::awaitable<void> connect();
  boost::asio::awaitable<void> writeLoop();
  boost::asio::awaitable<void> readLoop();
  void failAll(const std::string& why);

  boost::asio::any_io_executor ex_;
  api::HostPort address_;
  double timeout_s_, retry_after_s_;
  boost::asio::ip::tcp::socket socket_;
  enum class Conn { kDown, kConnecting, kUp } conn_ = Conn::kDown;
  double failed_at_ = -1e18;
  std::string last_error_;
  bool writing_ = false;
  std::string out_;                               // commands not yet written
  std::deque<std::shared_ptr<Pending>> pending_;  // commands awaiting replies, in order
  redisReader* reader_ = nullptr;
  std::shared_ptr<int> alive_;  // expires with the client: loops spawned on it check it
};

}  // namespace tidegate::gateway::admission
