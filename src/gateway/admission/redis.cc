#include "gateway/admission/redis.h"

#include <hiredis/hiredis.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "common/clock.h"

namespace tidegate::gateway::admission {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

struct RedisClient::Pending {
  explicit Pending(asio::any_io_executor ex) : wake(std::move(ex)) {}
  asio::steady_timer wake;  // cancelled when `result` is set
  std::optional<Result<RedisReply>> result;
};

namespace {

RedisReply convert(const redisReply* r) {
  RedisReply out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::kString;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::kStatus;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = RedisReply::Type::kError;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::kInteger;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      for (std::size_t i = 0; i < r->elements; ++i) out.elements.push_back(convert(r->element[i]));
      break;
    default:
      out.type = RedisReply::Type::kNil;
  }
  return out;
}

}  // namespace

RedisClient::RedisClient(asio::any_io_executor ex, api::HostPort address, double timeout_s,
                         double retry_after_s)
    : ex_(ex),
      address_(std::move(address)),
      timeout_s_(timeout_s),
      retry_after_s_(retry_after_s),
      socket_(ex),
      alive_(std::make_shared<int>(0)) {}

RedisClient::~RedisClient() {
  close();
  if (reader_) redisReaderFree(reader_);
}

void RedisClient::close() {
  boost::system::error_code ec;
  socket_.close(ec);
  failAll("redis: client closed");
  conn_ = Conn::kDown;
}

void RedisClient::failAll(const std::string& why) {
  out_.clear();
  for (auto& p : pending_) {
    if (!p->result) p->result = Error{why};
    p->wake.cancel();
  }
  pending_.clear();
}

asio::awaitable<Result<RedisReply>> RedisClient::call(std::vector<std::string> argv) {
  if (conn_ == Conn::kDown && monotonicSeconds() - failed_at_ < retry_after_s_)
    co_return Error{last_error_};
  std::vector<const char*> args;
  std::vector<std::size_t> lens;
  for (const auto& a : argv) {
    args.push_back(a.data());
    lens.push_back(a.size());
  }
  char* cmd = nullptr;
  const int n =
      redisFormatCommandArgv(&cmd, static_cast<int>(args.size()), args.data(), lens.data());
  if (n < 0) co_return Error{"redis: cannot format command"};
  out_.append(cmd, static_cast<std::size_t>(n));
  redisFreeCommand(cmd);
  auto p = std::make_shared<Pending>(ex_);
  pending_.push_back(p);
  if (conn_ == Conn::kDown) {
    conn_ = Conn::kConnecting;
    asio::co_spawn(ex_, connect(), asio::detached);
  } else if (conn_ == Conn::kUp && !writing_) {
    asio::co_spawn(ex_, writeLoop(), asio::detached);
  }
  p->wake.expires_after(std::chrono::microseconds(static_cast<long>(timeout_s_ * 1e6)));
  co_await p->wake.async_wait(kTuple);
  if (!p->result) {
    // Timed out: the reply, if it comes, is read and dropped (the entry stays for ordering).
    p->result = Error{"redis: no reply within " + std::to_string(timeout_s_) + " s"};
    co_return Error{"redis: timeout"};
  }
  co_return std::move(*p->result);
}

asio::awaitable<void> RedisClient::connect() {
  const auto alive = alive_;
  tcp::resolver resolver(ex_);
  auto [rec, results] =
      co_await resolver.async_resolve(address_.host, std::to_string(address_.port), kTuple);
  boost::system::error_code ec = rec;
  if (!ec) {
    asio::steady_timer deadline(ex_);
    deadline.expires_after(std::chrono::microseconds(static_cast<long>(timeout_s_ * 1e6)));
    deadline.async_wait([this, alive](boost::system::error_code e) {
      if (!e && alive.use_count() > 1 && conn_ == Conn::kConnecting) {
        boost::system::error_code ignore;
        socket_.close(ignore);
      }
    });
    auto [cec, ep] = co_await asio::async_connect(socket_, results, kTuple);
    deadline.cancel();
    ec = cec;
  }
  if (alive.use_count() == 1) co_return;  // the client is gone
  if (ec) {
    failed_at_ = monotonicSeconds();
    last_error_ = "redis: cannot connect to " + address_.str() + ": " + ec.message();
    conn_ = Conn::kDown;
    boost::system::error_code ignore;
    socket_.close(ignore);
    failAll(last_error_);
    co_return;
  }
  socket_.set_option(tcp::no_delay(true));
  if (reader_) redisReaderFree(reader_);
  reader_ = redisReaderCreate();
  conn_ = Conn::kUp;
  asio::co_spawn(ex_, readLoop(), asio::detached);
  if (!out_.empty()) asio::co_spawn(ex_, writeLoop(), asio::detached);
}

asio::awaitable<void> RedisClient::writeLoop() {
  const auto alive = alive_;
  writing_ = true;
  std::string buf;
  while (conn_ == Conn::kUp && !out_.empty()) {
    buf.swap(out_);
    out_.clear();
    auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(buf), kTuple);
    if (alive.use_count() == 1) co_return;
    if (ec) break;  // the read loop sees the broken connection and fails what is pending
  }
  writing_ = false;
}

asio::awaitable<void> RedisClient::readLoop() {
  const auto alive = alive_;
  std::array<char, 16384> buf;
  std::string why;
  while (true) {
    auto [ec, n] = co_await socket_.async_read_some(asio::buffer(buf), kTuple);
    if (alive.use_count() == 1) co_return;
    if (ec) {
      why = "redis: connection lost: " + ec.message();
      break;
    }
    if (redisReaderFeed(reader_, buf.data(), n) != REDIS_OK) {
      why = "redis: protocol error";
      break;
    }
    void* reply = nullptr;
    bool bad = false;
    while (true) {
      if (redisReaderGetReply(reader_, &reply) != REDIS_OK) {
        bad = true;
        break;
      }
      if (!reply) break;
      auto converted = convert(static_cast<redisReply*>(reply));
      freeReplyObject(reply);
      if (pending_.empty()) continue;  // a reply to nothing: ignore
      auto p = std::move(pending_.front());
      pending_.pop_front();
      if (!p->result) {
        p->result = std::move(converted);
        p->wake.cancel();
      }
    }
    if (bad) {
      why = "redis: protocol error";
      break;
    }
  }
  failed_at_ = monotonicSeconds();
  last_error_ = why;
  conn_ = Conn::kDown;
  boost::system::error_code ignore;
  socket_.close(ignore);
  failAll(why);
}

}  // namespace tidegate::gateway::admission
