// The Query protocol's form decoder takes any bytes an HTTP client sends: it
// must answer with a tree or an SqsException, never crash, throw anything
// else, or build more than the form holds; whatever it answers must render.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "utf8.hpp"
#include "wire_protocol.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view form(reinterpret_cast<const char*>(data), size);
  using shmq::bridge::SqsException;
  try {
    const nlohmann::json tree = shmq::bridge::parse_query_params(form);
    if (!tree.is_object()) std::abort();
    (void)shmq::bridge::dump_json(tree);
  } catch (const SqsException& e) {
    if (e.error().status != 400) std::abort();  // a client's mistake, nothing else
    if (!shmq::bridge::valid_utf8(shmq::bridge::render_json_error(e.error()))) std::abort();
    (void)shmq::bridge::render_query_error(e.error(), "id");
  }
  return 0;
}
