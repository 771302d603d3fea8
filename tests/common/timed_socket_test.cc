// TimedSocket over real loopback sockets: a deadline ends a pending read as a timeout, a
// deadline moved later before it passes does not, one lifted with expires_never() never fires,
// disarm() leaves no work behind; destroying a socket with a wait pending is safe.
#include "common/timed_socket.h"

#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <optional>

namespace tidegate {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

// A connected pair on 127.0.0.1: `client` (timed) and the server's end, which never writes.
struct Pair {
  asio::io_context ioc{1};
  tcp::acceptor acceptor{ioc, {asio::ip::make_address("127.0.0.1"), 0}};
  TimedSocket client{ioc.get_executor()};
  tcp::socket server{ioc};
  Pair() {
    client.socket().connect(acceptor.local_endpoint());
    acceptor.accept(server);
  }
};

// Runs `body` as a coroutine to completion (bounded: a hang fails the test, not the suite).
template <class F>
void run(asio::io_context& ioc, F body) {
  bool done = false;
  asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        co_await body();
        done = true;
      },
      asio::detached);
  ioc.run_for(10s);
  ASSERT_TRUE(done) << "the coroutine did not finish";
}

TEST(TimedSocket, APassedDeadlineEndsAPendingReadAsATimeout) {
  Pair p;
  run(p.ioc, [&]() -> asio::awaitable<void> {
    char c;
    p.client.expires_after(50ms);
    const auto t0 = std::chrono::steady_clock::now();
    auto [ec, n] = co_await p.client.async_read_some(asio::buffer(&c, 1), kTuple);
    EXPECT_TRUE(ec);
    EXPECT_EQ(p.client.classify(ec), boost::beast::error::timeout);
    EXPECT_TRUE(p.client.timedOut());
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 50ms);
    // The connection is closed: a later operation fails at once, as a timeout too.
    auto [ec2, n2] = co_await p.client.async_read_some(asio::buffer(&c, 1), kTuple);
    EXPECT_EQ(p.client.classify(ec2), boost::beast::error::timeout);
  });
}

TEST(TimedSocket, ADeadlineMovedLaterLetsTheReadFinish) {
  Pair p;
  run(p.ioc, [&]() -> asio::awaitable<void> {
    p.client.expires_after(30ms);
    p.client.expires_after(300ms);  // later: the armed wait re-arms when it fires
    asio::steady_timer later(p.ioc, 100ms);
    later.async_wait([&](auto) { asio::write(p.server, asio::buffer("x", 1)); });
    char c;
    auto [ec, n] = co_await p.client.async_read_some(asio::buffer(&c, 1), kTuple);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(c, 'x');
    EXPECT_FALSE(p.client.timedOut());
  });
}

TEST(TimedSocket, AnEarlierDeadlineReArmsTheTimer) {
  Pair p;
  run(p.ioc, [&]() -> asio::awaitable<void> {
    p.client.expires_after(5s);
    p.client.expires_after(50ms);  // earlier than the armed wait
    char c;
    const auto t0 = std::chrono::steady_clock::now();
    auto [ec, n] = co_await p.client.async_read_some(asio::buffer(&c, 1), kTuple);
    EXPECT_EQ(p.client.classify(ec), boost::beast::error::timeout);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 4s);
  });
}

TEST(TimedSocket, ExpiresNeverLiftsTheDeadline) {
  Pair p;
  run(p.ioc, [&]() -> asio::awaitable<void> {
    p.client.expires_after(30ms);
    p.client.expires_never();
    asio::steady_timer later(p.ioc, 150ms);
    later.async_wait([&](auto) { asio::write(p.server, asio::buffer("y", 1)); });
    char c;
    auto [ec, n] = co_await p.client.async_read_some(asio::buffer(&c, 1), kTuple);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_FALSE(p.client.timedOut());
    EXPECT_FALSE(p.client.classify(ec));
  });
}

TEST(TimedSocket, DisarmLeavesNoWaitPending) {
  Pair p;
  p.client.expires_after(5s);
  p.client.disarm();
  // No work left: run() returns at once instead of when the wait would have fired.
  const auto t0 = std::chrono::steady_clock::now();
  p.ioc.run_for(3s);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  EXPECT_FALSE(p.client.timedOut());
  EXPECT_TRUE(p.client.socket().is_open());
}

TEST(TimedSocket, DestroyedWithAWaitPending) {
  asio::io_context ioc{1};
  tcp::acceptor acceptor{ioc, {asio::ip::make_address("127.0.0.1"), 0}};
  {
    std::optional<TimedSocket> s;
    s.emplace(ioc.get_executor());
    s->socket().connect(acceptor.local_endpoint());
    s->expires_after(10ms);
    s.reset();  // the pending wait outlives the socket
  }
  ioc.run_for(100ms);  // the wait's handler runs (cancelled or fired) and touches nothing freed
  SUCCEED();
}

}  // namespace
}  // namespace tidegate
