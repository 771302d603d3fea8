#include "gateway/ledger/ledger.h"

#include <sqlite3.h>

#include <chrono>

#include "common/clock.h"
#include "common/log.h"

namespace tidegate::gateway {

namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS usage (
  id INTEGER PRIMARY KEY,
  time REAL NOT NULL,
  request_id TEXT,
  key_id TEXT, key_name TEXT, plan TEXT,
  model TEXT, target_model TEXT, pool TEXT, endpoint TEXT,
  prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,
  estimated INTEGER NOT NULL,
  status INTEGER NOT NULL,
  latency_s REAL, ttft_s REAL,
  cost REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS usage_time ON usage(time);
CREATE TABLE IF NOT EXISTS api_keys (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  plan TEXT NOT NULL,
  sha256 BLOB NOT NULL UNIQUE,
  created REAL NOT NULL,
  expires REAL
);
CREATE TABLE IF NOT EXISTS audit (
  id INTEGER PRIMARY KEY,
  time REAL NOT NULL,
  actor TEXT NOT NULL, remote TEXT, token TEXT,
  action TEXT NOT NULL, subject TEXT, detail TEXT
);
)sql";

std::string sqlError(sqlite3* db, const std::string& what) {
  return what + ": " + (db ? sqlite3_errmsg(db) : "out of memory");
}

Result<sqlite3*> openDb(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    auto e = sqlError(db, "ledger: cannot open " + path);
    sqlite3_close(db);
    return Error{e};
  }
  // Another connection (the writer, the reader) may hold the lock briefly: wait, do not fail.
  sqlite3_busy_timeout(db, 5000);
  char* err = nullptr;
  if (sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", nullptr, nullptr,
                   &err) != SQLITE_OK) {
    std::string e = "ledger: " + path + ": " + (err ? err : "cannot enable WAL");
    sqlite3_free(err);
    sqlite3_close(db);
    return Error{e};
  }
  return db;
}

Status exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string e = std::string("ledger: ") + (err ? err : "error");
    sqlite3_free(err);
    return Error{e};
  }
  return Status::Ok();
}

// A prepared statement, finalized on scope exit.
struct Stmt {
  sqlite3_stmt* s = nullptr;
  ~Stmt() { sqlite3_finalize(s); }
  bool prepare(sqlite3* db, const char* sql) {
    return sqlite3_prepare_v2(db, sql, -1, &s, nullptr) == SQLITE_OK;
  }
  void text(int i, const std::string& v) {
    sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
};

}  // namespace

Result<std::unique_ptr<Ledger>> Ledger::open(const std::string& path, double flush_interval_s) {
  std::unique_ptr<Ledger> l(new Ledger());
  l->path_ = path;
  l->interval_s_ = flush_interval_s;
  auto w = openDb(path);
  if (!w) return w.error();
  l->writer_db_ = *w;
  if (auto s = exec(l->writer_db_, kSchema); !s) {
    sqlite3_close(l->writer_db_);
    l->writer_db_ = nullptr;
    return Error{s.message() + " (" + path + ")"};
  }
  auto r = openDb(path);
  if (!r) {
    sqlite3_close(l->writer_db_);
    l->writer_db_ = nullptr;
    return r.error();
  }
  l->reader_db_ = *r;
  l->thread_ = std::thread([p = l.get()] { p->run(); });
  return l;
}

Ledger::~Ledger() {
  stop();
  sqlite3_close(writer_db_);
  sqlite3_close(reader_db_);
}

void Ledger::append(UsageRecord r) {
  {
    std::lock_guard lock(mu_);
    if (batch_.size() < kMaxPending && !stopping_) {
      batch_.push_back(std::move(r));
      return;
    }
  }
  if (dropped_.fetch_add(1) % 10000 == 0)
    spdlog::error("ledger: {} records waiting for the disk; dropping (dropped so far: {})",
                  kMaxPending, dropped_.load());
}

std::size_t Ledger::pending() const {
  std::lock_guard lock(mu_);
  return batch_.size();
}

void Ledger::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Ledger::run() {
  std::vector<UsageRecord> batch;
  bool last = false;
  while (!last) {
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::microseconds(static_cast<long>(interval_s_ * 1e6)),
                   [&] { return stopping_; });
      last = stopping_;
      batch.swap(batch_);
    }
    if (batch.empty()) continue;
    const double t0 = monotonicSeconds();
    if (auto s = flush(batch); !s) {
      // Keep the records and retry next interval (e.g. the disk was full for a moment).
      spdlog::error("{}; {} records kept for the next attempt", s.message(), batch.size());
      std::lock_guard lock(mu_);
      batch_.insert(batch_.begin(), std::make_move_iterator(batch.begin()),
                    std::make_move_iterator(batch.end()));
      if (last) spdlog::error("ledger: {} records could not be written at shutdown", batch_.size());
    } else {
      written_ += batch.size();
    }
    last_flush_s_ = monotonicSeconds() - t0;
    batch.clear();
  }
}

Status Ledger::flush(std::vector<UsageRecord>& batch) {
  if (auto s = exec(writer_db_, "BEGIN IMMEDIATE"); !s) return s;
  Stmt st;
  if (!st.prepare(writer_db_,
                  "INSERT INTO usage (time, request_id, key_id, key_name, plan, model, "
                  "target_model, pool, endpoint, prompt_tokens, completion_tokens, estimated, "
                  "status, latency_s, ttft_s, cost) VALUES "
                  "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")) {
    auto e = sqlError(writer_db_, "ledger: prepare");
    (void)exec(writer_db_, "ROLLBACK");
    return Error{e};
  }
  for (const auto& r : batch) {
    sqlite3_bind_double(st.s, 1, r.time);
    st.text(2, r.request_id);
    st.text(3, r.key_id);
    st.text(4, r.key_name);
    st.text(5, r.plan);
    st.text(6, r.model);
    st.text(7, r.target_model);
    st.text(8, r.pool);
    st.text(9, r.endpoint);
    sqlite3_bind_int64(st.s, 10, r.prompt_tokens);
    sqlite3_bind_int64(st.s, 11, r.completion_tokens);
    sqlite3_bind_int(st.s, 12, r.estimated ? 1 : 0);
    sqlite3_bind_int(st.s, 13, r.status);
    sqlite3_bind_double(st.s, 14, r.latency_s);
    if (r.ttft_s >= 0) {
      sqlite3_bind_double(st.s, 15, r.ttft_s);
    } else {
      sqlite3_bind_null(st.s, 15);
    }
    sqlite3_bind_double(st.s, 16, r.cost);
    if (sqlite3_step(st.s) != SQLITE_DONE) {
      auto e = sqlError(writer_db_, "ledger: insert");
      (void)exec(writer_db_, "ROLLBACK");
      return Error{e};
    }
    sqlite3_reset(st.s);
  }
  if (auto s = exec(writer_db_, "COMMIT"); !s) {
    (void)exec(writer_db_, "ROLLBACK");
    return s;
  }
  return Status::Ok();
}

Result<std::vector<UsageTotals>> Ledger::totals(double from, double to,
                                                const std::string& group_by) {
  std::string column;
  if (group_by == "key") {
    column = "key_id";
  } else if (group_by == "model" || group_by == "pool" || group_by == "plan") {
    column = group_by;
  } else {
    return Error{"group_by must be key, model, pool or plan, got \"" + group_by + "\""};
  }
  const std::string sql = "SELECT " + column +
                          ", COUNT(*), SUM(status >= 400), SUM(prompt_tokens), "
                          "SUM(completion_tokens), SUM(cost) FROM usage WHERE time >= ? AND "
                          "time < ? GROUP BY " +
                          column + " ORDER BY " + column;
  std::lock_guard lock(reader_mu_);
  Stmt st;
  if (!st.prepare(reader_db_, sql.c_str())) return Error{sqlError(reader_db_, "ledger: query")};
  sqlite3_bind_double(st.s, 1, from);
  sqlite3_bind_double(st.s, 2, to);
  std::vector<UsageTotals> out;
  int rc;
  while ((rc = sqlite3_step(st.s)) == SQLITE_ROW) {
    UsageTotals t;
    if (const auto* g = sqlite3_column_text(st.s, 0)) t.group = reinterpret_cast<const char*>(g);
    t.requests = sqlite3_column_int64(st.s, 1);
    t.errors = sqlite3_column_int64(st.s, 2);
    t.prompt_tokens = sqlite3_column_int64(st.s, 3);
    t.completion_tokens = sqlite3_column_int64(st.s, 4);
    t.cost = sqlite3_column_double(st.s, 5);
    out.push_back(std::move(t));
  }
  if (rc != SQLITE_DONE) return Error{sqlError(reader_db_, "ledger: query")};
  return out;
}

Result<std::pair<double, double>> Ledger::keyUsageSince(const std::string& key_id, double since) {
  std::lock_guard lock(reader_mu_);
  Stmt st;
  if (!st.prepare(reader_db_,
                  "SELECT COUNT(*), COALESCE(SUM(prompt_tokens + completion_tokens), 0) FROM "
                  "usage WHERE key_id = ? AND time >= ? AND status < 400"))
    return Error{sqlError(reader_db_, "ledger: query")};
  st.text(1, key_id);
  sqlite3_bind_double(st.s, 2, since);
  if (sqlite3_step(st.s) != SQLITE_ROW) return Error{sqlError(reader_db_, "ledger: query")};
  return std::pair<double, double>{sqlite3_column_double(st.s, 0), sqlite3_column_double(st.s, 1)};
}

namespace {

Status upsertKey(sqlite3* db, const admission::KeyRecord& k) {
  Stmt st;
  if (!st.prepare(db,
                  "INSERT OR REPLACE INTO api_keys (id, name, plan, sha256, created, expires) "
                  "VALUES (?,?,?,?,?,?)"))
    return Error{sqlError(db, "ledger: save key")};
  st.text(1, k.id);
  st.text(2, k.name);
  st.text(3, k.plan);
  sqlite3_bind_blob(st.s, 4, k.digest.data(), static_cast<int>(k.digest.size()), SQLITE_TRANSIENT);
  sqlite3_bind_double(st.s, 5, k.created);
  if (k.expires) {
    sqlite3_bind_double(st.s, 6, *k.expires);
  } else {
    sqlite3_bind_null(st.s, 6);
  }
  if (sqlite3_step(st.s) != SQLITE_DONE) return Error{sqlError(db, "ledger: save key")};
  return Status::Ok();
}

// REQUIRES: the caller holds the connection's lock.
Status insertAudit(sqlite3* db, const AuditEntry& e) {
  Stmt st;
  if (!st.prepare(db,
                  "INSERT INTO audit (time, actor, remote, token, action, subject, detail) "
                  "VALUES (?,?,?,?,?,?,?)"))
    return Error{sqlError(db, "ledger: audit")};
  sqlite3_bind_double(st.s, 1, e.time);
  st.text(2, e.actor);
  st.text(3, e.remote);
  st.text(4, e.token);
  st.text(5, e.action);
  st.text(6, e.subject);
  st.text(7, e.detail);
  if (sqlite3_step(st.s) != SQLITE_DONE) return Error{sqlError(db, "ledger: audit")};
  return Status::Ok();
}

// Runs `fn` in one transaction on `db`: both its writes commit, or neither.
template <class Fn>
Status transaction(sqlite3* db, Fn fn) {
  if (auto s = exec(db, "BEGIN IMMEDIATE"); !s) return s;
  if (auto s = fn(); !s) {
    (void)exec(db, "ROLLBACK");
    return s;
  }
  if (auto s = exec(db, "COMMIT"); !s) {
    (void)exec(db, "ROLLBACK");
    return s;
  }
  return Status::Ok();
}

}  // namespace

Status Ledger::appendAudit(const AuditEntry& e) {
  std::lock_guard lock(reader_mu_);
  return insertAudit(reader_db_, e);
}

Result<std::vector<AuditEntry>> Ledger::audit(double since, std::size_t limit) {
  std::lock_guard lock(reader_mu_);
  Stmt st;
  if (!st.prepare(reader_db_,
                  "SELECT time, actor, remote, token, action, subject, detail FROM audit "
                  "WHERE time >= ? ORDER BY id DESC LIMIT ?"))
    return Error{sqlError(reader_db_, "ledger: audit")};
  sqlite3_bind_double(st.s, 1, since);
  sqlite3_bind_int64(st.s, 2, static_cast<sqlite3_int64>(limit));
  auto col = [&](int i) {
    const auto* t = sqlite3_column_text(st.s, i);
    return t ? std::string(reinterpret_cast<const char*>(t)) : std::string();
  };
  std::vector<AuditEntry> out;
  int rc;
  while ((rc = sqlite3_step(st.s)) == SQLITE_ROW)
    out.push_back({sqlite3_column_double(st.s, 0), col(1), col(2), col(3), col(4), col(5), col(6)});
  if (rc != SQLITE_DONE) return Error{sqlError(reader_db_, "ledger: audit")};
  return out;
}

Status Ledger::saveKey(const admission::KeyRecord& k, const AuditEntry& why) {
  std::lock_guard lock(reader_mu_);
  return transaction(reader_db_, [&]() -> Status {
    if (auto s = upsertKey(reader_db_, k); !s) return s;
    return insertAudit(reader_db_, why);
  });
}

Status Ledger::deleteKey(const std::string& id, const AuditEntry& why) {
  std::lock_guard lock(reader_mu_);
  return transaction(reader_db_, [&]() -> Status {
    Stmt st;
    if (!st.prepare(reader_db_, "DELETE FROM api_keys WHERE id = ?"))
      return Error{sqlError(reader_db_, "ledger: delete key")};
    st.text(1, id);
    if (sqlite3_step(st.s) != SQLITE_DONE) return Error{sqlError(reader_db_, "ledger: delete key")};
    return insertAudit(reader_db_, why);
  });
}

Result<std::vector<admission::KeyRecord>> Ledger::loadKeys() {
  std::lock_guard lock(reader_mu_);
  Stmt st;
  if (!st.prepare(reader_db_, "SELECT id, name, plan, sha256, created, expires FROM api_keys"))
    return Error{sqlError(reader_db_, "ledger: load keys")};
  std::vector<admission::KeyRecord> out;
  while (sqlite3_step(st.s) == SQLITE_ROW) {
    admission::KeyRecord k;
    k.id = reinterpret_cast<const char*>(sqlite3_column_text(st.s, 0));
    k.name = reinterpret_cast<const char*>(sqlite3_column_text(st.s, 1));
    k.plan = reinterpret_cast<const char*>(sqlite3_column_text(st.s, 2));
    k.digest.assign(static_cast<const char*>(sqlite3_column_blob(st.s, 3)),
                    static_cast<std::size_t>(sqlite3_column_bytes(st.s, 3)));
    k.created = sqlite3_column_double(st.s, 4);
    if (sqlite3_column_type(st.s, 5) != SQLITE_NULL) k.expires = sqlite3_column_double(st.s, 5);
    k.dynamic = true;
    out.push_back(std::move(k));
  }
  return out;
}

}  // namespace tidegate::gateway
