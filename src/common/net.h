#pragma once
// Small socket helpers shared by the local provider and the tests.

namespace tidegate {

// A free TCP port on 127.0.0.1 (bound and released; another process may take it before the
// caller binds it, which callers accept for child processes that must be told their port).
// -1 on failure.
int freePort();

}  // namespace tidegate
