# Writes OUTPUT, a C++ source that defines shmq::bridge::embedded_files():
# each of FILES (a ;-list of paths under BASE) as a path and its bytes, so
# that shmqd serves them with no data directory to install or find.
# Run as: cmake -DOUTPUT=... -DBASE=... -DFILES=a;b -P embed_files.cmake
set(body "")
set(table "")
set(i 0)
foreach(name IN LISTS FILES)
  file(READ "${BASE}/${name}" hex HEX)
  string(LENGTH "${hex}" hex_length)
  math(EXPR size "${hex_length} / 2")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "'\\\\x\\1'," bytes "${hex}")
  string(APPEND body "const char kFile${i}[] = {${bytes} 0};\n")
  string(APPEND table "    {\"${name}\", std::string_view(kFile${i}, ${size})},\n")
  math(EXPR i "${i} + 1")
endforeach()
file(WRITE "${OUTPUT}.tmp" "// Generated from ${BASE} by cmake/embed_files.cmake; do not edit.
#include <map>
#include <string>
#include <string_view>

namespace shmq::bridge {
namespace {
${body}}  // namespace

const std::map<std::string, std::string_view, std::less<>>& embedded_files() {
  static const std::map<std::string, std::string_view, std::less<>> files{
${table}  };
  return files;
}

}  // namespace shmq::bridge
")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUTPUT}.tmp")
