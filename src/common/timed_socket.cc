#include "common/timed_socket.h"

namespace tidegate {

TimedSocket::~TimedSocket() {
  if (!state_) return;
  state_->socket = nullptr;
  ++state_->generation;
  state_->timer.cancel();
}

void TimedSocket::expires_after(clock::duration d) {
  if (!state_) state_ = std::make_shared<State>(socket_.get_executor(), &socket_);
  state_->deadline = clock::now() + d;
  // A wait pending for a time no later than the new deadline will re-arm when it fires.
  if (state_->deadline < state_->armed) arm(state_, state_->deadline);
}

void TimedSocket::disarm() {
  if (!state_) return;
  state_->deadline = clock::time_point::max();
  if (state_->armed == clock::time_point::max()) return;  // no wait pending
  state_->armed = clock::time_point::max();
  ++state_->generation;
  state_->timer.cancel();
}

void TimedSocket::arm(const std::shared_ptr<State>& s, clock::time_point at) {
  s->armed = at;
  s->timer.expires_at(at);  // cancels a pending wait, which the new generation disowns
  s->timer.async_wait([s, generation = ++s->generation](const boost::beast::error_code& ec) {
    if (generation != s->generation) return;  // re-armed since, or the socket is gone
    s->armed = clock::time_point::max();
    if (ec || !s->socket || s->deadline == clock::time_point::max()) return;
    if (clock::now() < s->deadline) return arm(s, s->deadline);  // moved later meanwhile
    s->expired = true;
    boost::beast::error_code ignored;
    s->socket->close(ignored);
  });
}

}  // namespace tidegate
