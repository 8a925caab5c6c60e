# Turns a file into a C++ header holding its bytes as a constexpr
# std::string_view, deploy::embedded::NAME. Run at build time by
# deploy_embed() in CMakeLists.txt:
#   cmake -DINPUT=FILE -DOUTPUT=HEADER -DNAME=IDENTIFIER -P cmake/embed.cmake
# Every byte is written as a \xNN escape, so any content (quotes, "*/",
# ")\"", non-ASCII text) comes through unchanged.
foreach(variable INPUT OUTPUT NAME)
  if(NOT DEFINED ${variable})
    message(FATAL_ERROR "embed.cmake: -D${variable}= is required")
  endif()
endforeach()

file(READ "${INPUT}" hex HEX)
string(LENGTH "${hex}" hex_length)
math(EXPR size "${hex_length} / 2")

set(lines "")
set(offset 0)
while(offset LESS hex_length)
  string(SUBSTRING "${hex}" ${offset} 64 chunk)  # 32 bytes a line
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "\\\\x\\1" chunk "${chunk}")
  string(APPEND lines "    \"${chunk}\"\n")
  math(EXPR offset "${offset} + 64")
endwhile()

file(WRITE "${OUTPUT}.tmp"
  "// Generated at build time by cmake/embed.cmake from\n"
  "// ${INPUT}: edit that file, not this one.\n"
  "#pragma once\n\n"
  "#include <string_view>\n\n"
  "namespace deploy::embedded {\n\n"
  "inline constexpr std::string_view ${NAME}{\n"
  "    \"\"\n"
  "${lines}"
  "    , ${size}};\n\n"
  "}  // namespace deploy::embedded\n")
file(RENAME "${OUTPUT}.tmp" "${OUTPUT}")
