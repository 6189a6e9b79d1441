#include "engine/io/parked_stack.h"

#include <sys/mman.h>
#include <zstd.h>

#include <cstdio>
#include <cstdlib>

namespace flowrun {

namespace {

// zstd's fast levels: at -1 a waiting item's 3.6 KiB of frames take about 4 µs to compress and
// 2 µs to restore, against the dictionary about 600 bytes (1,000 without one).
constexpr int kLevel = -1;

}  // namespace

struct StackCodec::Contexts {
  ZSTD_CCtx* compress = ZSTD_createCCtx();
  ZSTD_DCtx* decompress = ZSTD_createDCtx();
  // The first frames saved: the frames of fibers that wait alike share most of their bytes
  // (return addresses, zeros, the same layout), so each of the others compresses against them.
  // Raw content, never replaced (what was compressed against it must decompress against it).
  std::vector<char> dictionary;
  ZSTD_CDict* compress_dictionary = nullptr;
  ZSTD_DDict* decompress_dictionary = nullptr;
  std::vector<char> out;  // compress()'s room, reused

  ~Contexts() {
    ZSTD_freeCDict(compress_dictionary);
    ZSTD_freeDDict(decompress_dictionary);
    ZSTD_freeCCtx(compress);
    ZSTD_freeDCtx(decompress);
  }
};

StackCodec::StackCodec() : contexts_(std::make_unique<Contexts>()) {}

StackCodec::~StackCodec() = default;

std::vector<char> StackCodec::compress(const char* from, size_t size) {
  Contexts& c = *contexts_;
  if (!c.compress || !c.decompress) return {};
  if (!c.compress_dictionary && c.dictionary.empty()) {
    c.dictionary.assign(from, from + size);
    c.compress_dictionary = ZSTD_createCDict(c.dictionary.data(), size, kLevel);
    c.decompress_dictionary = ZSTD_createDDict(c.dictionary.data(), size);
    if (!c.compress_dictionary || !c.decompress_dictionary) {  // no memory: go without
      ZSTD_freeCDict(c.compress_dictionary);
      ZSTD_freeDDict(c.decompress_dictionary);
      c.compress_dictionary = nullptr;
      c.decompress_dictionary = nullptr;
    }
  }
  c.out.resize(ZSTD_compressBound(size));
  const size_t n = c.compress_dictionary
                       ? ZSTD_compress_usingCDict(c.compress, c.out.data(), c.out.size(), from, size,
                                                  c.compress_dictionary)
                       : ZSTD_compressCCtx(c.compress, c.out.data(), c.out.size(), from, size, kLevel);
  if (ZSTD_isError(n)) return {};
  return std::vector<char>(c.out.begin(), c.out.begin() + static_cast<std::ptrdiff_t>(n));
}

bool StackCodec::decompress(const std::vector<char>& compressed, char* to, size_t size) {
  Contexts& c = *contexts_;
  const size_t n = c.decompress_dictionary
                       ? ZSTD_decompress_usingDDict(c.decompress, to, size, compressed.data(), compressed.size(),
                                                    c.decompress_dictionary)
                       : ZSTD_decompressDCtx(c.decompress, to, size, compressed.data(), compressed.size());
  return !ZSTD_isError(n) && n == size;
}

bool ParkedStack::save(StackCodec& codec, char* low, char* sp, char* top) {
  std::vector<char> compressed;
  try {
    compressed = codec.compress(sp, static_cast<size_t>(top - sp));
  } catch (const std::bad_alloc&) {
    return false;
  }
  if (compressed.empty()) return false;
  // The whole usable stack, the pages a poll's deeper calls touched as well as the frames'. Like
  // the guard page below it, it becomes PROT_NONE: one mapping with the guard, not one more.
  const size_t size = static_cast<size_t>(top - low);
  if (mprotect(low, size, PROT_NONE) != 0) return false;  // nothing changed
  // Should the pages not go, they only stay resident: the restore writes the same bytes.
  madvise(low, size, MADV_DONTNEED);
  compressed_ = std::move(compressed);
  low_ = low;
  sp_ = sp;
  top_ = top;
  return true;
}

void ParkedStack::restore(StackCodec& codec) {
  if (compressed_.empty()) return;
  const size_t size = static_cast<size_t>(top_ - low_);
  if (mprotect(low_, size, PROT_READ | PROT_WRITE) != 0 ||
      !codec.decompress(compressed_, sp_, static_cast<size_t>(top_ - sp_))) {
    std::fputs("flowrun: a sleeping fiber's stack could not be restored\n", stderr);
    std::abort();
  }
  compressed_ = {};
}

}  // namespace flowrun
