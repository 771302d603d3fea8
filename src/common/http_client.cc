#include "common/http_client.h"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http.hpp>
#include <cctype>

namespace tidegate::http {

namespace bhttp = beast::http;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

std::string_view errorKind(std::string_view message) {
  return message.substr(0, message.find(':'));
}

namespace {
// Names a failed operation's error by kind (see http_client.h).
std::string describe(std::string_view op, const beast::error_code& ec) {
  std::string kind;
  if (ec == beast::error::timeout) {
    kind = "timeout";
  } else if (ec == asio::error::eof || ec == asio::error::connection_reset ||
             ec == asio::error::broken_pipe || ec == bhttp::error::end_of_stream ||
             ec == bhttp::error::partial_message) {
    kind = "reset";
  } else if (ec.category() == bhttp::make_error_code(bhttp::error::end_of_stream).category()) {
    kind = "protocol";
  } else {
    kind = std::string(op);
  }
  return kind + ": " + std::string(op) + ": " + ec.message();
}
}  // namespace

std::string_view Response::header(std::string_view name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string_view{} : std::string_view(it->second);
}

Client::Client(asio::any_io_executor ex, std::string host, std::uint16_t port)
    : ex_(std::move(ex)), host_(std::move(host)), port_(port) {}

Client::~Client() = default;

void Client::cancel() {
  cancelled_ = true;
  if (stream_) {
    beast::error_code ec;
    stream_->socket().close(ec);
  }
}

void Client::close() {
  parser_.reset();
  cancelled_ = false;
  if (stream_) {
    beast::error_code ec;
    stream_->socket().close(ec);
    stream_.reset();
  }
  buffer_.clear();
}

asio::awaitable<tidegate::Status> Client::connect(double timeout_s) {
  close();
  tcp::resolver resolver(ex_);
  auto [rec, results] = co_await resolver.async_resolve(host_, std::to_string(port_), kTuple);
  if (rec) co_return Error{"resolve: " + host_ + ": " + rec.message()};
  stream_.emplace(ex_);
  stream_->expires_after(std::chrono::milliseconds(static_cast<long>(timeout_s * 1000)));
  auto [ec, ep] = co_await stream_->async_connect(results, kTuple);
  if (ec) {
    close();
    co_return Error{std::string(ec == beast::error::timeout ? "timeout" : "connect") +
                    ": connect " + host_ + ":" + std::to_string(port_) + ": " + ec.message()};
  }
  beast::error_code ignored;
  stream_->socket().set_option(tcp::no_delay(true), ignored);
  co_return tidegate::Status::Ok();
}

struct Client::Parser {
  bhttp::response_parser<bhttp::buffer_body> p;
};

asio::awaitable<Result<Response>> Client::start(const ClientRequest& req) {
  parser_.reset();
  if (cancelled_) close();
  if (!stream_) {
    auto st = co_await connect(req.connect_timeout_s > 0 ? req.connect_timeout_s : req.timeout_s);
    if (!st) co_return Error{st.message()};
  }
  bhttp::request<bhttp::string_body> r{bhttp::string_to_verb(req.method), req.target, 11};
  r.set(bhttp::field::host, host_ + ":" + std::to_string(port_));
  for (const auto& [k, v] : req.headers) r.set(k, v);
  r.body() = req.body;
  r.prepare_payload();
  stream_->expires_after(std::chrono::milliseconds(static_cast<long>(req.timeout_s * 1000)));
  auto [wec, wn] = co_await bhttp::async_write(*stream_, r, kTuple);
  if (wec) {
    close();
    co_return Error{describe("write", wec)};
  }
  parser_ = std::make_unique<Parser>();
  parser_->p.body_limit(boost::none);
  auto [hec, hn] = co_await bhttp::async_read_header(*stream_, buffer_, parser_->p, kTuple);
  if (hec) {
    close();
    co_return Error{describe("read", hec)};
  }
  Response resp;
  const auto& msg = parser_->p.get();
  resp.status = msg.result_int();
  for (const auto& f : msg) {
    std::string name(f.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    resp.headers[name] = std::string(f.value());
  }
  resp.keep_alive = keep_alive_ = msg.keep_alive();
  co_return resp;
}

asio::awaitable<Result<std::string_view>> Client::next(double idle_timeout_s) {
  if (!parser_) co_return Error{"protocol: next() without start()"};
  auto& p = parser_->p;
  while (!p.is_done()) {
    p.get().body().data = chunk_;
    p.get().body().size = sizeof chunk_;
    stream_->expires_after(std::chrono::milliseconds(static_cast<long>(idle_timeout_s * 1000)));
    auto [ec, n] = co_await bhttp::async_read_some(*stream_, buffer_, p, kTuple);
    if (ec == bhttp::error::need_buffer) ec = {};
    const std::size_t got = sizeof chunk_ - p.get().body().size;
    if (ec) {
      close();
      co_return Error{describe("read", ec)};
    }
    if (got > 0) co_return std::string_view(chunk_, got);
  }
  parser_.reset();
  if (!keep_alive_) close();
  co_return std::string_view{};
}

asio::awaitable<Result<Response>> Client::send(const ClientRequest& req, DataFn on_data) {
  // One deadline for the whole exchange: each read gets only the time that is left.
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(static_cast<long>(req.timeout_s * 1000));
  auto started = co_await start(req);
  if (!started) co_return started;
  Response resp = std::move(started).value();
  while (true) {
    const double left =
        std::chrono::duration<double>(deadline - std::chrono::steady_clock::now()).count();
    auto piece = co_await next(std::max(left, 0.001));
    if (!piece) co_return Error{piece.error().message};
    if (piece->empty()) break;
    if (on_data) {
      if (!on_data(*piece)) {
        close();
        co_return resp;
      }
    } else {
      resp.body.append(piece->data(), piece->size());
    }
  }
  co_return resp;
}

Result<Response> fetch(const std::string& host, std::uint16_t port, const ClientRequest& req,
                       DataFn on_data) {
  asio::io_context ioc;
  Client client(ioc.get_executor(), host, port);
  std::optional<Result<Response>> out;
  asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        out.emplace(co_await client.send(req, std::move(on_data)));
      },
      [&](std::exception_ptr e) {
        if (e && !out) out.emplace(Error{"protocol: client failed"});
      });
  ioc.run();
  if (!out) return Error{"protocol: no response"};
  return std::move(*out);
}

}  // namespace tidegate::http
