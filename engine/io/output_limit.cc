#include "engine/io/output_limit.h"

#include <cctype>
#include <cstdint>

#include "engine/io/byte_size.h"
#include "engine/io/step_error.h"

namespace flowrun {
namespace {

// Adds the size of `value` to `total`, stopping once past `limit`; an explicit stack, not
// recursion, so any depth is fine.
size_t measure(const Json& root, size_t limit) {
  size_t total = 0;
  std::vector<const Json*> todo{&root};
  while (!todo.empty() && total <= limit) {
    const Json* v = todo.back();
    todo.pop_back();
    switch (v->type()) {
      case Json::value_t::string:
        total += v->get_ref<const std::string&>().size() + 3;
        break;
      case Json::value_t::array:
        total += 2 + v->size();
        for (const auto& item : *v) todo.push_back(&item);
        break;
      case Json::value_t::object:
        total += 2 + v->size();
        for (const auto& [k, item] : v->items()) {
          total += k.size() + 3;
          todo.push_back(&item);
        }
        break;
      default:
        total += 8;
        break;
    }
  }
  return total;
}

}  // namespace

size_t json_size_within(const Json& value, size_t limit) { return measure(value, limit); }

void check_output_size(Json& outputs, size_t limit) {
  if (json_size_within(outputs, limit) <= limit) return;
  outputs = Json::object();
  throw StepError::permanent("outputs are larger than max_output (" + format_bytes(limit) +
                             "): return less, or raise `max_output:` on the step");
}

}  // namespace flowrun
