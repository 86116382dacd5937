# Finds llhttp's C sources as Debian's node-llhttp package ships them (there is no -dev package in
# Debian 12) and builds them into the static library target Llhttp::llhttp. Nothing is copied into
# the repository: the sources are compiled from where the package put them.
#
# Result: Llhttp_FOUND, Llhttp_VERSION, target Llhttp::llhttp.
# Hints: LLHTTP_SOURCE_DIR (the folder with api.c, http.c, llhttp.c), LLHTTP_INCLUDE_DIR.

find_path(LLHTTP_INCLUDE_DIR llhttp.h
          PATHS /usr/share/include/llhttp /usr/include/llhttp /usr/include
          DOC "Folder with llhttp.h")
find_path(LLHTTP_SOURCE_DIR llhttp.c
          PATHS /usr/share/llhttp
          DOC "Folder with llhttp's C sources (api.c, http.c, llhttp.c)")

if(LLHTTP_INCLUDE_DIR AND EXISTS "${LLHTTP_INCLUDE_DIR}/llhttp.h")
  file(STRINGS "${LLHTTP_INCLUDE_DIR}/llhttp.h" _llhttp_version_lines
       REGEX "^#define LLHTTP_VERSION_(MAJOR|MINOR|PATCH) [0-9]+$")
  foreach(_part MAJOR MINOR PATCH)
    string(REGEX REPLACE ".*LLHTTP_VERSION_${_part} ([0-9]+).*" "\\1" _llhttp_${_part}
           "${_llhttp_version_lines}")
  endforeach()
  set(Llhttp_VERSION "${_llhttp_MAJOR}.${_llhttp_MINOR}.${_llhttp_PATCH}")
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(Llhttp
  REQUIRED_VARS LLHTTP_SOURCE_DIR LLHTTP_INCLUDE_DIR
  VERSION_VAR Llhttp_VERSION
  REASON_FAILURE_MESSAGE "install Debian's node-llhttp package (packaging/install-deps.sh build)")

if(Llhttp_FOUND AND NOT TARGET Llhttp::llhttp)
  add_library(tandem_llhttp OBJECT
              "${LLHTTP_SOURCE_DIR}/api.c" "${LLHTTP_SOURCE_DIR}/http.c"
              "${LLHTTP_SOURCE_DIR}/llhttp.c")
  target_include_directories(tandem_llhttp SYSTEM PUBLIC "${LLHTTP_INCLUDE_DIR}")
  set_target_properties(tandem_llhttp PROPERTIES POSITION_INDEPENDENT_CODE ON C_STANDARD 99)
  # Third-party code: its warnings are not ours to fix.
  target_compile_options(tandem_llhttp PRIVATE -w)
  # Strict mode: CRLF required after chunk data (else "3\r\nabcXX0" smuggles a request past a
  # proxy that reads it differently), bare LF refused as a line end, and the other checks RFC 9112
  # allows a server to make. Every client of tandem (HAProxy, curl, browsers) sends CRLF.
  target_compile_definitions(tandem_llhttp PRIVATE LLHTTP_STRICT_MODE=1)
  add_library(Llhttp::llhttp ALIAS tandem_llhttp)
endif()
mark_as_advanced(LLHTTP_INCLUDE_DIR LLHTTP_SOURCE_DIR)
