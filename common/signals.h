#pragma once
// Termination signals taken by one thread with sigwait. Call first in main: every thread started later inherits the
// mask, so SIGTERM and SIGINT never interrupt a handler half-way, and a peer closing its socket (SIGPIPE) never kills
// the process.
#include <pthread.h>
#include <signal.h>

namespace gasoline {

// Blocks SIGTERM and SIGINT in the calling thread, ignores SIGPIPE, and returns the set to sigwait on.
inline sigset_t block_termination_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  return signals;
}

}  // namespace gasoline
