#pragma once
// Clang's thread-safety attributes (https://clang.llvm.org/docs/ThreadSafetyAnalysis.html),
// after abseil's and LevelDB's port/thread_annotations.h. Under clang with -Wthread-safety (the
// clang build turns it on and makes it an error) a read of a GUARDED_BY member without its mutex
// held fails to compile; other compilers see nothing.
#if defined(__clang__)
#define FLOWRUN_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define FLOWRUN_THREAD_ANNOTATION(x)
#endif

// A class that is a lock (Mutex), or a scope that holds one (MutexLock).
#define CAPABILITY(x) FLOWRUN_THREAD_ANNOTATION(capability(x))
#define SCOPED_CAPABILITY FLOWRUN_THREAD_ANNOTATION(scoped_lockable)

// A member read or written only with the mutex held; for a pointer, what it points to.
#define GUARDED_BY(x) FLOWRUN_THREAD_ANNOTATION(guarded_by(x))
#define PT_GUARDED_BY(x) FLOWRUN_THREAD_ANNOTATION(pt_guarded_by(x))

// A function the caller must call with (REQUIRES) or without (EXCLUDES) the mutex held.
#define REQUIRES(...) FLOWRUN_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define REQUIRES_SHARED(...) FLOWRUN_THREAD_ANNOTATION(requires_shared_capability(__VA_ARGS__))
#define EXCLUDES(...) FLOWRUN_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))

// A function that takes or gives back the mutex (no argument: the object itself).
#define ACQUIRE(...) FLOWRUN_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define RELEASE(...) FLOWRUN_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define TRY_ACQUIRE(...) FLOWRUN_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define ASSERT_CAPABILITY(x) FLOWRUN_THREAD_ANNOTATION(assert_capability(x))
#define RETURN_CAPABILITY(x) FLOWRUN_THREAD_ANNOTATION(lock_returned(x))

// Turns the analysis off for one function; say why next to it.
#define NO_THREAD_SAFETY_ANALYSIS FLOWRUN_THREAD_ANNOTATION(no_thread_safety_analysis)
