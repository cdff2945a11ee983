// tinyseg CUDA emulator prelude, force-included before the kernel source.
#include <math.h>  // libstdc++'s <math.h> puts the float overloads in the global namespace, like CUDA
#include <stdio.h>
#include <algorithm>
#include <atomic>
#include <barrier>
#include <cassert>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#define TINYSEG_EMULATED 1
#define __global__
#define __device__
#define __host__
#define __constant__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __shared__ static
#define __syncthreads() tinyseg_emu::syncthreads(__LINE__)
#define __threadfence() std::atomic_thread_fence(std::memory_order_seq_cst)
#define __trap() tinyseg_emu::fail("__trap() called", __FILE__, __LINE__)
#define DYN_SHARED(T, name) T* name = reinterpret_cast<T*>(tinyseg_emu::dyn_smem)
#undef assert
#define assert(e) ((e) ? (void)0 : tinyseg_emu::fail("assert(" #e ") failed", __FILE__, __LINE__))
#define TINYSEG_EMU_EXPORT extern "C" __attribute__((visibility("default")))

struct uint3 { unsigned x, y, z; };
struct dim3 { unsigned x = 1, y = 1, z = 1; };
static thread_local uint3 threadIdx, blockIdx;
static dim3 blockDim, gridDim;
static const int warpSize = 32;

#define TINYSEG_MINMAX(A, B, R, LO, HI) \
  inline R min(A a, B b) { return LO; } inline R max(A a, B b) { return HI; }
#define TINYSEG_MINMAX_INT(A, B, R) TINYSEG_MINMAX(A, B, R, (R)a < (R)b ? (R)a : (R)b, (R)a > (R)b ? (R)a : (R)b)
TINYSEG_MINMAX_INT(int, int, int) TINYSEG_MINMAX_INT(unsigned, unsigned, unsigned)
TINYSEG_MINMAX_INT(int, unsigned, unsigned) TINYSEG_MINMAX_INT(unsigned, int, unsigned)
TINYSEG_MINMAX_INT(long long, long long, long long)
TINYSEG_MINMAX_INT(unsigned long long, unsigned long long, unsigned long long)
TINYSEG_MINMAX(float, float, float, fminf(a, b), fmaxf(a, b))
TINYSEG_MINMAX(double, double, double, fmin(a, b), fmax(a, b))
TINYSEG_MINMAX(float, double, double, fmin(a, b), fmax(a, b))
TINYSEG_MINMAX(double, float, double, fmin(a, b), fmax(a, b))
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __fdividef(float a, float b) { return a / b; }
template <class T> inline T __ldg(const T* p) { return *p; }

#define TINYSEG_ATOMIC(T) \
  inline T atomicAdd(T* p, T v) { return std::atomic_ref<T>(*p).fetch_add(v); } \
  inline T atomicExch(T* p, T v) { return std::atomic_ref<T>(*p).exchange(v); }
TINYSEG_ATOMIC(int) TINYSEG_ATOMIC(unsigned) TINYSEG_ATOMIC(unsigned long long)
TINYSEG_ATOMIC(float) TINYSEG_ATOMIC(double)
#define TINYSEG_ATOMIC_INT(T) \
  inline T atomicSub(T* p, T v) { return std::atomic_ref<T>(*p).fetch_sub(v); } \
  inline T atomicCAS(T* p, T expected, T v) { std::atomic_ref<T>(*p).compare_exchange_strong(expected, v); return expected; } \
  inline T atomicMax(T* p, T v) { std::atomic_ref<T> a(*p); T old = a.load(); while (!a.compare_exchange_weak(old, std::max(old, v))) {} return old; } \
  inline T atomicMin(T* p, T v) { std::atomic_ref<T> a(*p); T old = a.load(); while (!a.compare_exchange_weak(old, std::min(old, v))) {} return old; }
TINYSEG_ATOMIC_INT(int) TINYSEG_ATOMIC_INT(unsigned)

namespace tinyseg_emu {
struct PhaseDone { void operator()() noexcept; };
static std::barrier<PhaseDone>* block_barrier;  // the running block's __syncthreads()
static unsigned char* dyn_smem;                 // the running block's dynamic shared memory
static std::atomic<int> sync_line{-1};          // where this barrier phase's first thread waits
static std::mutex launch_mutex, error_mutex;    // the globals above serve one launch at a time
static std::string first_error;
static int n_errors;
void PhaseDone::operator()() noexcept { sync_line.store(-1); }

struct KernelError : std::runtime_error { using std::runtime_error::runtime_error; };
[[noreturn]] inline void fail(const char* what, const char* file, int line) {
  throw KernelError(std::string(file) + ":" + std::to_string(line) + ": " + what);
}
inline void record_error(const std::string& what) {
  std::lock_guard<std::mutex> hold(error_mutex);
  if (n_errors++ == 0)
    first_error = "block (" + std::to_string(blockIdx.x) + ", " + std::to_string(blockIdx.y) + ", " +
                  std::to_string(blockIdx.z) + ") thread (" + std::to_string(threadIdx.x) + ", " +
                  std::to_string(threadIdx.y) + ", " + std::to_string(threadIdx.z) + "): " + what;
}
inline void syncthreads(int line) {
  int first = -1;
  if (!sync_line.compare_exchange_strong(first, line) && first != line)
    record_error("divergent __syncthreads(): threads of one block wait at lines " +
                 std::to_string(first) + " and " + std::to_string(line) + " (undefined on the GPU)");
  block_barrier->arrive_and_wait();
}
template <class Kernel> void run_thread(const Kernel& kernel, uint3 block, uint3 thread) {
  blockIdx = block;
  threadIdx = thread;
  try { kernel(); }
  catch (const std::exception& e) { record_error(e.what()); }
  catch (...) { record_error("unknown C++ exception"); }
  block_barrier->arrive_and_drop();  // an exited thread no longer holds back the others' barriers
}
template <class Kernel>
int launch(unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz, size_t smem, Kernel kernel) {
  std::lock_guard<std::mutex> hold(launch_mutex);
  first_error.clear();
  n_errors = 0;
  gridDim = dim3{gx, gy, gz};
  blockDim = dim3{bx, by, bz};
  const unsigned n_threads = bx * by * bz;
  struct alignas(16) Chunk { unsigned char bytes[16]; };
  std::vector<Chunk> smem_buffer(smem / 16 + 1);
  for (unsigned long long b = 0; b < 1ull * gx * gy * gz && n_errors == 0; ++b) {
    const uint3 block{unsigned(b % gx), unsigned(b / gx % gy), unsigned(b / gx / gy)};
    std::memset(smem_buffer.data(), 0xFF, smem_buffer.size() * sizeof(Chunk));
    dyn_smem = smem_buffer[0].bytes;
    std::barrier<PhaseDone> barrier(n_threads);
    block_barrier = &barrier;
    sync_line = -1;
    std::vector<std::thread> threads;
    threads.reserve(n_threads);
    try {
      for (unsigned t = 0; t < n_threads; ++t)
        threads.emplace_back(run_thread<Kernel>, std::cref(kernel), block,
                             uint3{t % bx, t / bx % by, t / bx / by});
    } catch (const std::system_error& e) {
      record_error(std::string("could not start a thread: ") + e.what());
      for (size_t t = threads.size(); t < n_threads; ++t) barrier.arrive_and_drop();
    }
    for (std::thread& thread : threads) thread.join();
  }
  return n_errors;
}
}  // namespace tinyseg_emu

TINYSEG_EMU_EXPORT const char* tinyseg_emu_last_error() { return tinyseg_emu::first_error.c_str(); }
