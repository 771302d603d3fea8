#include "support/scripted_server.h"

#include <sys/socket.h>

#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

namespace tidegate::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

ScriptedServer::ScriptedServer(Script script, Body body)
    : script_(std::move(script)),
      body_(std::move(body)),
      acceptor_(ioc_, {asio::ip::make_address("127.0.0.1"), 0}) {
  accept_thread_ = std::thread([this] { acceptLoop(); });
}

ScriptedServer::~ScriptedServer() {
  stopping_ = true;
  beast::error_code ec;
  ::shutdown(acceptor_.native_handle(), SHUT_RDWR);  // wakes the blocking accept()
  acceptor_.close(ec);
  {
    std::lock_guard lock(mu_);
    for (auto& s : sockets_) s->shutdown(tcp::socket::shutdown_both, ec);
  }
  accept_thread_.join();
  for (auto& t : threads_) t.join();
}

void ScriptedServer::acceptLoop() {
  while (!stopping_) {
    auto sock = std::make_shared<tcp::socket>(ioc_);
    beast::error_code ec;
    acceptor_.accept(*sock, ec);
    if (ec) return;
    const int conn = connections_++;
    std::lock_guard lock(mu_);
    sockets_.push_back(sock);
    threads_.emplace_back([this, sock, conn] { serve(*sock, conn); });
  }
}
void ScriptedServer::serve(tcp::socket& sock, int conn) {
  beast::flat_buffer buf;
  for (int n = 0;; ++n) {
    beast::http::request<beast::http::string_body> req;
    beast::error_code ec;
    beast::http::read(sock, buf, req, ec);
    if (ec) return;
    ++requests_;
    const Action a = script_(conn, n);
    if (a == Action::kHang) {
      while (!stopping_) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      return;
    }
    if (a == Action::kDropRequest) {
      sock.close(ec);
      return;
    }
    const std::string body = body_ ? body_(std::string(req.target())) : "ok";
    if (a == Action::kRaw) {
      ++answered_;
      asio::write(sock, asio::buffer(body), ec);
      sock.shutdown(tcp::socket::shutdown_both, ec);
      sock.close(ec);
      return;
    }
    std::string head = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    head += a == Action::kConnectionClose ? "Connection: close\r\n"
                                          : "Keep-Alive: timeout=5, max=100\r\n";
    head += "\r\n" + body;
    ++answered_;  // before the write: the client may have read it before write() returns
    asio::write(sock, asio::buffer(head), ec);
    if (a != Action::kKeepAlive) {
      sock.shutdown(tcp::socket::shutdown_both, ec);
      sock.close(ec);
      return;
    }
  }
}

}  // namespace tidegate::testing
