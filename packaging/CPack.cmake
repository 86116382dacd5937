# The Debian packages, built by CPack from this build tree:
#   cpack -G DEB                    (in the build directory, after building)
#   cmake --build build --target deb
# write tandem_<version>_amd64.deb (the server, its units, its settings, the HAProxy template)
# and tandem-dev_<version>_amd64.deb (headers, libtandem.a and a CMake package, to build an
# application on tandem), the version being project()'s (the one place it is set).
#
# Everything the packages hold beyond the binary is installed in the components "deb" and "dev",
# which are EXCLUDE_FROM_ALL: a plain `cmake --install` installs tandem-server only and never
# writes into /etc or /lib/systemd, whatever the prefix.

set(TANDEM_PACKAGE_MAINTAINER "tandem developers <tandem@example.org>"
    CACHE STRING "Maintainer field of the Debian package (Name <address>)")

set(tandem_pkg_source "${CMAKE_CURRENT_SOURCE_DIR}/packaging")
set(tandem_pkg_build "${CMAKE_CURRENT_BINARY_DIR}/packaging")
file(MAKE_DIRECTORY "${tandem_pkg_build}")

# Debian's changelog, from the project version; gzip -n keeps the package reproducible (and the
# date honours SOURCE_DATE_EPOCH).
string(TIMESTAMP TANDEM_PACKAGE_DATE "%a, %d %b %Y %H:%M:%S +0000" UTC)
configure_file("${tandem_pkg_source}/debian/changelog.in" "${tandem_pkg_build}/changelog" @ONLY)
execute_process(COMMAND gzip -9nc "${tandem_pkg_build}/changelog"
                OUTPUT_FILE "${tandem_pkg_build}/changelog.gz" RESULT_VARIABLE gzip_result)
if(NOT gzip_result EQUAL 0)
  message(FATAL_ERROR "packaging: gzip of the changelog failed")
endif()

# Files under /etc are conffiles: dpkg keeps an administrator's edits across upgrades.
set(tandem_env_files "${tandem_pkg_source}/etc/tandem/3001.env"
                     "${tandem_pkg_source}/etc/tandem/3002.env"
                     "${tandem_pkg_source}/etc/tandem/tandemctl.conf")
set(tandem_conffiles "")
foreach(env_file IN LISTS tandem_env_files)
  get_filename_component(name "${env_file}" NAME)
  string(APPEND tandem_conffiles "/etc/tandem/${name}\n")
endforeach()
file(WRITE "${tandem_pkg_build}/conffiles" "${tandem_conffiles}")

set(tandem_data_permissions OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
install(FILES "${CMAKE_CURRENT_SOURCE_DIR}/systemd/tandem@.service"
              "${CMAKE_CURRENT_SOURCE_DIR}/systemd/tandem.target"
        DESTINATION /lib/systemd/system PERMISSIONS ${tandem_data_permissions}
        COMPONENT deb EXCLUDE_FROM_ALL)
install(FILES "${CMAKE_CURRENT_SOURCE_DIR}/systemd/haproxy.service.d/tandem.conf"
        DESTINATION /lib/systemd/system/haproxy.service.d PERMISSIONS ${tandem_data_permissions}
        COMPONENT deb EXCLUDE_FROM_ALL)
install(PROGRAMS "${CMAKE_CURRENT_SOURCE_DIR}/systemd/haproxy-server-state"
        DESTINATION libexec/tandem COMPONENT deb EXCLUDE_FROM_ALL)
install(FILES ${tandem_env_files} DESTINATION /etc/tandem PERMISSIONS ${tandem_data_permissions}
        COMPONENT deb EXCLUDE_FROM_ALL)
# The one HAProxy template, the template of HAProxy's own JSON answers (errorfiles) and their
# defaults, for whoever renders /etc/haproxy/haproxy.cfg and the errorfiles (Ansible's tandem_lb
# role, or the system tests' harness); the package never writes either.
install(FILES "${CMAKE_CURRENT_SOURCE_DIR}/haproxy/haproxy.cfg.j2"
              "${CMAKE_CURRENT_SOURCE_DIR}/haproxy/errorfile.http.j2"
              "${CMAKE_CURRENT_SOURCE_DIR}/haproxy/defaults.yml"
              "${CMAKE_CURRENT_SOURCE_DIR}/haproxy/README.md"
        DESTINATION share/tandem/haproxy PERMISSIONS ${tandem_data_permissions}
        COMPONENT deb EXCLUDE_FROM_ALL)
install(FILES "${CMAKE_CURRENT_SOURCE_DIR}/README.md"
        DESTINATION share/tandem PERMISSIONS ${tandem_data_permissions}
        COMPONENT deb EXCLUDE_FROM_ALL)
install(FILES "${tandem_pkg_source}/debian/copyright" "${tandem_pkg_build}/changelog.gz"
              "${tandem_pkg_source}/README.Debian"
        DESTINATION share/doc/tandem PERMISSIONS ${tandem_data_permissions}
        COMPONENT deb EXCLUDE_FROM_ALL)
install(FILES "${tandem_pkg_source}/debian/lintian-overrides" RENAME tandem
        DESTINATION share/lintian/overrides PERMISSIONS ${tandem_data_permissions}
        COMPONENT deb EXCLUDE_FROM_ALL)
# The manual page, written at install time (so `cpack` after a plain build has it) from the
# built binary's own --help (packaging/manpage.cmake): it cannot drift from the flags.
install(CODE "execute_process(COMMAND \"${CMAKE_COMMAND}\" -DSERVER=$<TARGET_FILE:tandem-server>
                -DOUTPUT=${tandem_pkg_build}/tandem-server.1.gz -P ${tandem_pkg_source}/manpage.cmake
                COMMAND_ERROR_IS_FATAL ANY)"
        COMPONENT deb EXCLUDE_FROM_ALL)
install(CODE "execute_process(COMMAND \"${CMAKE_COMMAND}\" -DCTL=$<TARGET_FILE:tandemctl>
                -DOUTPUT=${tandem_pkg_build}/tandemctl.1.gz
                -P ${tandem_pkg_source}/tandemctl-manpage.cmake COMMAND_ERROR_IS_FATAL ANY)"
        COMPONENT deb EXCLUDE_FROM_ALL)
install(FILES "${tandem_pkg_build}/tandem-server.1.gz" "${tandem_pkg_build}/tandemctl.1.gz"
        DESTINATION share/man/man1 PERMISSIONS ${tandem_data_permissions}
        COMPONENT deb EXCLUDE_FROM_ALL)
install(FILES "${tandem_pkg_source}/bash-completion/tandemctl"
        DESTINATION share/bash-completion/completions PERMISSIONS ${tandem_data_permissions}
        COMPONENT deb EXCLUDE_FROM_ALL)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME tandem)
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_CONTACT "${TANDEM_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_INSTALL_DEFAULT_DIRECTORY_PERMISSIONS
    OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
# Two packages: "server" holds the binary (component "runtime") and the "deb" files; "dev" the
# development files.
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_GROUPING ONE_PER_GROUP)
set(CPACK_COMPONENTS_ALL runtime deb dev)
set(CPACK_COMPONENT_RUNTIME_GROUP server)
set(CPACK_COMPONENT_DEB_GROUP server)
set(CPACK_COMPONENT_DEV_GROUP dev)
set(CPACK_DEBIAN_SERVER_PACKAGE_NAME tandem)
set(CPACK_DEBIAN_DEV_PACKAGE_NAME tandem-dev)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_SERVER_PACKAGE_SECTION httpd)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
# The synopsis is project()'s DESCRIPTION; this is the extended description under it.
set(CPACK_DEBIAN_SERVER_DESCRIPTION "tandem runs one web application as several single-threaded libuv
instances (tandem-server), each a systemd unit tandem@<port> with
sd_notify readiness, a watchdog and a drain on stop, behind HAProxy
with health checks, retries and cookie stickiness.
.
This package holds the server, tandemctl (status, drain, ready,
maint, a rolling restart, merged logs and a live view of the
instances of a host), the hardened systemd units, the shipped
instances' settings and the HAProxy configuration template.")
set(CPACK_DEBIAN_DEV_DESCRIPTION "Build your own application on tandem: the headers of its public API
(tandem/application.hpp), libtandem.a (HTTP/1.1, the instance's
lifecycle, flags, metrics, systemd notifications, the drain) and a
CMake package: find_package(tandem), target tandem::tandem. The
application then runs under tandem's units and HAProxy template.")
# Libraries from the binary (dpkg-shlibdeps), plus what the units and scripts need: systemd 248
# for PrivateIPC= (the newest directive tandem@.service uses), deb-systemd-helper and
# deb-systemd-invoke for the maintainer scripts, socat for the HAProxy state saving drop-in.
set(CPACK_DEBIAN_SERVER_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_SERVER_PACKAGE_DEPENDS "systemd (>= 248), init-system-helpers (>= 1.52), socat")
set(CPACK_DEBIAN_SERVER_PACKAGE_RECOMMENDS "haproxy (>= 2.6)")
set(CPACK_DEBIAN_SERVER_PACKAGE_CONTROL_EXTRA
    "${tandem_pkg_source}/debian/postinst" "${tandem_pkg_source}/debian/prerm"
    "${tandem_pkg_source}/debian/postrm" "${tandem_pkg_build}/conffiles")
# An application links libtandem.a with the libraries its headers and objects use, found through
# pkg-config by the CMake package; it runs under the units of the server package.
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS
    "libuv1-dev (>= 1.44), libjsoncpp-dev, libsystemd-dev, pkg-config, cmake (>= 3.25), tandem (= ${PROJECT_VERSION})")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)

# `cmake --build build --target deb`: everything the package holds, then the package.
add_custom_target(deb
  COMMAND "${CMAKE_CPACK_COMMAND}" -G DEB --config "${CMAKE_BINARY_DIR}/CPackConfig.cmake"
  WORKING_DIRECTORY "${CMAKE_BINARY_DIR}"
  DEPENDS tandem-server tandem
  COMMENT "Building the Debian package with CPack"
  VERBATIM)
