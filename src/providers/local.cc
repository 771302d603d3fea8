#include "providers/local.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "api/resources.h"

namespace tidegate::providers {

namespace {
std::string selfExe() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "tidegate";
}
}  // namespace

LocalProvider::LocalProvider(std::string log_dir) : log_dir_(std::move(log_dir)) {}

LocalProvider::~LocalProvider() { stopAll(2); }

Result<pid_t> LocalProvider::start(const std::string& name, const std::vector<std::string>& command,
                                   int port, const std::string& model, const std::string& gpu_ids) {
  if (command.empty()) return Error{"empty command"};
  auto argv = api::expandCommand(command, port, model, gpu_ids);
  if (argv[0] == "tidegate") argv[0] = selfExe();
  const std::string log = log_dir_ + "/tidegate-replica-" + name + ".log";
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return Error{std::string("fork: ") + std::strerror(errno)};
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);  // the parent died before prctl
    // The child must not inherit the controller's blocked signals (serve blocks SIGTERM).
    sigset_t none;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, nullptr);
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
    }
    ::setenv("CUDA_VISIBLE_DEVICES", gpu_ids.c_str(), 1);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  children_[pid] = name;
  return pid;
}

void LocalProvider::signal(pid_t pid, int sig) {
  if (children_.contains(pid)) ::kill(pid, sig);
}

std::optional<int> LocalProvider::reap(pid_t pid) {
  int status = 0;
  const pid_t r = ::waitpid(pid, &status, WNOHANG);
  if (r == pid || (r < 0 && errno == ECHILD)) {
    children_.erase(pid);
    return status;
  }
  return std::nullopt;
}

void LocalProvider::stopAll(double grace_s) {
  for (const auto& [pid, name] : children_) ::kill(pid, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(static_cast<long>(grace_s * 1000));
  while (!children_.empty() && std::chrono::steady_clock::now() < deadline) {
    for (auto it = children_.begin(); it != children_.end();) {
      int st;
      if (::waitpid(it->first, &st, WNOHANG) != 0) {
        it = children_.erase(it);
      } else {
        ++it;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (const auto& [pid, name] : children_) {
    ::kill(pid, SIGKILL);
    int st;
    ::waitpid(pid, &st, 0);
  }
  children_.clear();
}

}  // namespace tidegate::providers
