# Writes tandemctl(1), gzipped, from the built binary's own --help and each command's --help, so
# the manual cannot drift from the options. Run at install time of the "deb" component
# (CPack.cmake):
#   cmake -DCTL=<tandemctl> -DOUTPUT=<dir>/tandemctl.1.gz -P tandemctl-manpage.cmake
# The date comes from SOURCE_DATE_EPOCH when set (reproducible builds).
cmake_minimum_required(VERSION 3.25)

set(commands status drain ready maint restart logs top)

include("${CMAKE_CURRENT_LIST_DIR}/manpage-common.cmake")

function(help_of out)
  execute_process(COMMAND "${CTL}" ${ARGN} --help OUTPUT_VARIABLE help RESULT_VARIABLE result)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "tandemctl-manpage.cmake: ${CTL} ${ARGN} --help failed")
  endif()
  # The footer (exit status, files) has sections of its own below.
  string(REGEX REPLACE "\nExit status:.*" "" help "${help}")
  roff_escape("${help}" help)
  set(${out} "${help}" PARENT_SCOPE)
endfunction()

page_version_and_date(tandemctl-manpage.cmake "${CTL}" tandemctl)

help_of(overview)
set(command_sections "")
foreach(command IN LISTS commands)
  help_of(help ${command})
  string(APPEND command_sections ".SS ${command}\n.nf\n${help}\n.fi\n")
endforeach()

set(page [=[.TH TANDEMCTL 1 "@date@" "tandem @version@" "tandem"
.SH NAME
tandemctl \- the tandem instances of a host and their HAProxy, in one command
.SH SYNOPSIS
.B tandemctl
[\fIOPTIONS\fR] \fBstatus\fR|\fBdrain\fR|\fBready\fR|\fBmaint\fR|\fBrestart\fR|\fBlogs\fR|\fBtop\fR ...
.SH DESCRIPTION
.B tandemctl
reads this host's instances from \fI/etc/tandem/PORT.env\fR (as the units \fBtandem@PORT\fR do)
and its balancer from \fI/etc/tandem/tandemctl.conf\fR, then asks HAProxy's runtime socket,
systemd and each instance's \fB/health\fR and \fB/metrics\fR. \fBstatus\fR shows one line per
instance; \fBdrain\fR, \fBready\fR and \fBmaint\fR move one in and out of rotation and refuse to
take the last UP one out; \fBrestart\fR rolls this host one instance at a time without losing a
request; \fBlogs\fR merges the journals of the instances and HAProxy; \fBtop\fR is a live view.
.SH OPTIONS
.nf
@overview@
.fi
.SH COMMANDS
@command_sections@
.SH EXIT STATUS
.TP
.B 0
Done.
.TP
.B 1
Failed; what to do next is printed on standard error.
.TP
.B 2
Bad arguments, an unknown instance or a configuration file that does not parse.
.TP
.B 3
\fBstatus\fR: an instance that should serve (its unit enabled, or another host's) is not UP.
.TP
.B 4
\fBdrain\fR, \fBmaint\fR: refused, it would leave fewer than \fB\-\-min\-up\fR instances UP.
.TP
.B 5
\fB\-\-wait\fR: its bound passed before what it waits for happened.
.SH FILES
.TP
.I /etc/tandem/PORT.env
One instance: \fBTANDEM_ID\fR (HAProxy's server name) and \fBTANDEM_BIND\fR (where it listens).
.TP
.I /etc/tandem/tandemctl.conf
\fBTANDEM_LB_SOCKET\fR, \fBTANDEM_LB_BACKEND\fR, \fBTANDEM_LB_URL\fR and \fBTANDEM_LB_COOKIE\fR:
how this host's HAProxy is reached.
.TP
.I /run/haproxy/admin.sock
HAProxy's runtime API; it needs root or the haproxy group.
.TP
.I /var/log/journal, /run/log/journal
The system journal that \fBlogs\fR reads; it needs root or the systemd\-journal group.
.SH EXAMPLES
.nf
tandemctl status
tandemctl drain app\-1 \-\-wait=30
tandemctl restart all
tandemctl logs \-\-request 50ce36d3\-a39c\-4856\-bbba\-bccc74c5dee1
tandemctl logs \-f \-\-instance app\-1 \-\-since 10m
.fi
.SH SEE ALSO
.BR tandem\-server (1),
.BR systemctl (1),
.BR journalctl (1),
.BR haproxy (1)
]=])
string(CONFIGURE "${page}" page @ONLY)

write_gzipped_page(tandemctl-manpage.cmake "${page}" "${OUTPUT}")
