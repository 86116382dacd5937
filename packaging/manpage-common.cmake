# What the man page scripts (manpage.cmake: tandem-server(1); tandemctl-manpage.cmake:
# tandemctl(1)) share: roff escaping, the program's version and the page's date, and writing the
# page gzipped. Included by each with include(${CMAKE_CURRENT_LIST_DIR}/manpage-common.cmake).

# roff: backslashes doubled, hyphens made explicit, and a line may not start with . or '.
function(roff_escape text out)
  string(REPLACE "\\" "\\\\" text "${text}")
  string(REPLACE "-" "\\-" text "${text}")
  string(REGEX REPLACE "(^|\n)([.'])" "\\1\\\\&\\2" text "${text}")
  set(${out} "${text}" PARENT_SCOPE)
endfunction()

# Sets `version` (what `program --version` prints after "<name> ") and `date` (UTC, from
# SOURCE_DATE_EPOCH when set: reproducible builds) in the caller's scope; `script` names the
# caller in errors.
function(page_version_and_date script program name)
  execute_process(COMMAND "${program}" --version OUTPUT_VARIABLE version
                  RESULT_VARIABLE version_result OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT version_result EQUAL 0)
    message(FATAL_ERROR "${script}: ${program} --version failed")
  endif()
  string(REGEX REPLACE "^${name} " "" version "${version}")
  string(TIMESTAMP date "%Y-%m-%d" UTC)
  set(version "${version}" PARENT_SCOPE)
  set(date "${date}" PARENT_SCOPE)
endfunction()

# Writes `page` to `output` (a path ending in .gz) gzipped.
function(write_gzipped_page script page output)
  string(REGEX REPLACE "\\.gz$" "" plain "${output}")
  file(WRITE "${plain}" "${page}")
  # -n: no name or time stamp in the gzip header, as Debian wants (reproducible, lintian-clean).
  execute_process(COMMAND gzip -9nf "${plain}" RESULT_VARIABLE gzip_result)
  if(NOT gzip_result EQUAL 0)
    message(FATAL_ERROR "${script}: gzip failed")
  endif()
endfunction()
