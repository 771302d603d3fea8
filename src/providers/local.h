#pragma once
// The local provider: runs each replica as a child process of `tidegate serve` on this machine.
// Children die with the parent (PR_SET_PDEATHSIG) and stopAll() ends every one of them, so no
// replica outlives the controller. Output goes to a log file per replica. Single-threaded: the
// controller's thread calls it.

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace tidegate::providers {

class LocalProvider {
 public:
  explicit LocalProvider(std::string log_dir = "/tmp");
  ~LocalProvider();

  // Expands {port}, {model}, {gpu_ids} in `command` ("tidegate" as the first word runs this
  // binary) and starts it with CUDA_VISIBLE_DEVICES=gpu_ids. Returns the pid.
  Result<pid_t> start(const std::string& name, const std::vector<std::string>& command, int port,
                      const std::string& model, const std::string& gpu_ids);
  void signal(pid_t pid, int sig);
  // The exit status if `pid` has exited (reaped now), else nullopt.
  std::optional<int> reap(pid_t pid);
  // SIGTERM to every child, then SIGKILL after `grace_s`; waits for all.
  void stopAll(double grace_s);

 private:
  std::string log_dir_;
  std::map<pid_t, std::string> children_;
};

}  // namespace tidegate::providers
