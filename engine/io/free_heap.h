#pragma once
// Giving the kernel back the heap's free pages.

namespace flowrun {

// Returns the whole free pages inside the heap to the kernel (glibc's malloc_trim), not only
// those at its top, which is all glibc gives back by itself. For after a burst of memory is let
// go among memory still in use: the 10,000 items of a for_each that has ended freed most of
// their ~7 KiB each, scattered between the allocations that stay, and the for_each's results
// and their journal text would otherwise come on top of the process's peak.
void give_back_free_heap();

}  // namespace flowrun
