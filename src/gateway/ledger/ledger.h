#pragma once
// The usage ledger: one record per request that reached a generation endpoint — completed,
// failed, refused or dropped by its client — in SQLite (WAL mode) at the configured path.
//
// Workers append() to an in-memory batch (a mutex and a vector push: no I/O on the request path);
// a writer thread commits the batch every flush interval in one transaction. So a process killed
// with -9 loses at most the records of the last interval (<= 1 s by configuration), and stop()
// (clean shutdown) commits everything first. WAL with synchronous=NORMAL: a committed transaction
// survives the process dying; only a power loss may take the last ones.
//
// The same database keeps the API keys created through the admin API (hashes only), written at
// once on the admin thread, and the audit trail: who changed which key, and every reload — a
// key change and its audit row commit in one transaction. Queries (usage reports, key listing) use
// their own connection, so they never wait for the writer (WAL readers do not block the writer or
// each other).

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"
#include "gateway/admission/keys.h"

struct sqlite3;

namespace tidegate::gateway {

struct UsageRecord {
  double time = 0;  // unix seconds at the end of the request
  std::string request_id;
  std::string key_id, key_name, plan;  // empty when auth is off
  std::string model, target_model, pool, endpoint;
  long prompt_tokens = 0, completion_tokens = 0;
  bool estimated = false;  // counts estimated by the gateway (the engine reported none)
  int status = 0;          // HTTP status; 499 when the client went away
  double latency_s = 0, ttft_s = -1;
  double cost = 0;  // dollars
};

struct UsageTotals {
  std::string group;  // the key id, model, pool or plan
  long requests = 0, errors = 0, prompt_tokens = 0, completion_tokens = 0;
  double cost = 0;
  double costPerMillionTokens() const {
    const double t = static_cast<double>(prompt_tokens + completion_tokens);
    return t > 0 ? cost / t * 1e6 : 0;
  }
};

// One event of the audit trail.
struct AuditEntry {
  double time = 0;      // unix seconds
  std::string actor;    // who (the name an admin API caller gives, "admin", "reload")
  std::string remote;   // the caller's address, if any
  std::string token;    // which admin token (a prefix of its SHA-256), if any
  std::string action;   // key.create | key.plan | key.revoke | config.reload | config.refused
  std::string subject;  // the key id, or the configuration file
  std::string detail;   // plan, name, digest, reasons
};

class Ledger {
 public:
  // Opens (creating if needed) the database at `path` and starts the writer thread.
  static Result<std::unique_ptr<Ledger>> open(const std::string& path, double flush_interval_s);
  ~Ledger();  // stop()s

  // Thread-safe, never blocks on I/O. Records beyond kMaxPending (the disk cannot keep up) are
  // counted in dropped() and logged, not queued without bound.
  void append(UsageRecord r);
  // Commits everything appended so far and stops the writer. Idempotent.
  void stop();

  // group_by: key | model | pool | plan. Records with from <= time < to.
  Result<std::vector<UsageTotals>> totals(double from, double to, const std::string& group_by);
  // Requests and tokens of `key_id` since `since` (unix seconds), for quota seeding.
  Result<std::pair<double, double>> keyUsageSince(const std::string& key_id, double since);

  // Created API keys; each change is recorded with its audit entry, atomically.
  Status saveKey(const admission::KeyRecord& k, const AuditEntry& why);
  Status deleteKey(const std::string& id, const AuditEntry& why);
  Result<std::vector<admission::KeyRecord>> loadKeys();

  // The audit trail: appended at once (admin thread, reloads); read newest first.
  Status appendAudit(const AuditEntry& e);
  Result<std::vector<AuditEntry>> audit(double since, std::size_t limit);

  std::uint64_t written() const { return written_.load(); }
  std::uint64_t dropped() const { return dropped_.load(); }
  std::size_t pending() const;
  double lastFlushSeconds() const { return last_flush_s_.load(); }

  static constexpr std::size_t kMaxPending = 1'000'000;

 private:
  Ledger() = default;
  void run();
  Status flush(std::vector<UsageRecord>& batch);

  std::string path_;
  double interval_s_ = 0.25;
  sqlite3* writer_db_ = nullptr;
  sqlite3* reader_db_ = nullptr;
  std::mutex reader_mu_;  // the reader connection, shared by admin requests and key writes
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<UsageRecord> batch_;
  bool stopping_ = false;
  std::thread thread_;
  std::atomic<std::uint64_t> written_{0}, dropped_{0};
  std::atomic<double> last_flush_s_{0};
};

}  // namespace tidegate::gateway
