// Holds signals back while oneDNN's GEMM runs. oneDNN 2.6's float32 JIT GEMM (the `gemm:jit` matmul: every float32
// matmul on CPUs without AVX-512, and strided layouts with it) points the stack register at a heap buffer when K is
// large (K > 84 with AVX-512, > 252 with AVX2), so a signal handled on that thread writes its frame into the heap and
// corrupts it: Ctrl-C, a child process exiting, Node's CPU profiler. Fixed in oneDNN 3.12
// (uxlfoundation/oneDNN#4845); Debian ships 2.6. The calling thread blocks asynchronous signals for the duration of a
// matmul call (they are delivered when it returns) and the OpenMP worker threads block them for good, so the kernel
// delivers process signals to threads outside the GEMM.
#pragma once
#include <pthread.h>
#include <csignal>

namespace dinots {

// Every signal except the synchronous ones (faults), which cannot wait and must not be masked.
inline const sigset_t& AsyncSignals() {
  static const sigset_t set = [] {
    sigset_t s;
    sigfillset(&s);
    for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS}) sigdelset(&s, sig);
    return s;
  }();
  return set;
}

class SignalGuard {
 public:
  SignalGuard() { pthread_sigmask(SIG_BLOCK, &AsyncSignals(), &old_); }
  ~SignalGuard() { pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
  SignalGuard(const SignalGuard&) = delete;
  SignalGuard& operator=(const SignalGuard&) = delete;

 private:
  sigset_t old_;
};

// Blocks asynchronous signals in the OpenMP worker threads (all but the caller's); run again after the team grows.
void BlockSignalsInWorkers();

}  // namespace dinots
