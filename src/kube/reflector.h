#pragma once
// Reflector: keeps a local copy of one kind of object (a path, optional selectors) in step with
// the API server by list + watch, as client-go's reflector and informer do:
//   list → replace the copy → watch from the list's resourceVersion (with bookmarks, which only
//   move the resourceVersion on) → on each event update the copy → when the server ends the
//   watch, watch again from the last resourceVersion; when the connection drops, back off (with
//   jitter) and watch again from it; on 410 Gone (the version is too old), list again.
// The copy is never cleared because the API server is unreachable: consumers keep serving the
// last known state (the data plane never waits on the API server). A kind the server does not
// serve (404: its CRD is not installed) is synced and empty, and listed again every 30 s.
//
// Threads: runs on its Client's executor; objects() and the callback are used there.

#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>

#include <functional>
#include <map>
#include <string>

#include "kube/client.h"

namespace tidegate::kube {

class Reflector {
 public:
  // Called after the copy changed (a list, or each event); `synced` is true once a list has
  // completed.
  using OnChange = std::function<void(const Reflector&)>;

  Reflector(Client& client, std::string path, ListOptions options = {});
  // Runs until stop(): co_spawn it on the client's executor.
  boost::asio::awaitable<void> run();
  void stop();

  void onChange(OnChange fn) { on_change_ = std::move(fn); }
  // Objects by "namespace/name" (or "name" for cluster-scoped kinds).
  const std::map<std::string, bj::object>& objects() const { return objects_; }
  bool synced() const { return synced_; }
  const std::string& path() const { return path_; }
  const std::string& resourceVersion() const { return resource_version_; }
  // The last failure (empty when the last list or watch worked), for /admin/state and logs.
  const std::string& lastError() const { return last_error_; }

  struct Stats {
    std::uint64_t lists = 0, watches = 0, events = 0, gone = 0, failures = 0;
  };
  const Stats& stats() const { return stats_; }

  static std::string key(const bj::object& object);

 private:
  enum class Listed { kOk, kFailed, kNotServed };
  boost::asio::awaitable<Listed> relist();
  boost::asio::awaitable<void> sleep(double seconds);
  void fail(const ApiError& e);

  Client& client_;
  std::string path_;
  ListOptions options_;
  OnChange on_change_;
  std::map<std::string, bj::object> objects_;
  std::string resource_version_;
  std::string last_error_;
  bool synced_ = false;
  bool stopped_ = false;
  int failures_in_row_ = 0;
  double last_logged_ = -1e9;
  Stats stats_;
};

}  // namespace tidegate::kube
