# Writes OUT, a C++ file with the dashboard's files (FILES, under BASE) as
# byte arrays and FindWebAsset() over them: index.html is "/" (and
# "/index.html"), any other file "/<name>". Run by master/CMakeLists.txt at
# build time: cmake -DOUT=... -DBASE=... -DFILES=a;b -P embed_web_assets.cmake
set(arrays "")
set(table "")
set(i 0)
foreach(name ${FILES})
  file(READ ${BASE}/${name} hex HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  string(APPEND arrays "const unsigned char kAsset${i}[] = {${bytes}};\n")
  if(name MATCHES "\\.html$")
    set(type "text/html; charset=utf-8")
  elseif(name MATCHES "\\.js$")
    set(type "text/javascript; charset=utf-8")
  elseif(name MATCHES "\\.css$")
    set(type "text/css; charset=utf-8")
  elseif(name MATCHES "\\.svg$")
    set(type "image/svg+xml")
  else()
    set(type "application/octet-stream")
  endif()
  if(name STREQUAL "index.html")
    string(APPEND table "    {\"/\", \"${type}\", kAsset${i}, sizeof kAsset${i}},\n")
  endif()
  string(APPEND table "    {\"/${name}\", \"${type}\", kAsset${i}, sizeof kAsset${i}},\n")
  math(EXPR i "${i} + 1")
endforeach()
file(WRITE ${OUT}.tmp "// Generated from master/web/ by cmake/embed_web_assets.cmake. Do not edit.
#include <cstring>

#include \"master/web.h\"

namespace prs::master {
namespace {
${arrays}
const WebAsset kAssets[] = {
${table}};
}  // namespace

const WebAsset* FindWebAsset(const std::string& path) {
  for (const WebAsset& a : kAssets) {
    if (path == a.path) return &a;
  }
  return nullptr;
}

}  // namespace prs::master
")
file(COPY_FILE ${OUT}.tmp ${OUT} ONLY_IF_DIFFERENT)
file(REMOVE ${OUT}.tmp)
