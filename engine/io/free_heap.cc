#include "engine/io/free_heap.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace flowrun {

void give_back_free_heap() {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

}  // namespace flowrun
