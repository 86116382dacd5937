# Writes tandem-server(1), gzipped, from the built binary's own --help and --version, so the
# manual cannot drift from the flags. Run at install time of the "deb" component (CPack.cmake):
#   cmake -DSERVER=<tandem-server> -DOUTPUT=<dir>/tandem-server.1.gz -P manpage.cmake
# The date comes from SOURCE_DATE_EPOCH when set (reproducible builds).
cmake_minimum_required(VERSION 3.25)

include("${CMAKE_CURRENT_LIST_DIR}/manpage-common.cmake")

execute_process(COMMAND "${SERVER}" --help OUTPUT_VARIABLE help RESULT_VARIABLE help_result)
if(NOT help_result EQUAL 0)
  message(FATAL_ERROR "manpage.cmake: ${SERVER} --help failed")
endif()
page_version_and_date(manpage.cmake "${SERVER}" tandem-server)
roff_escape("${help}" help)

set(page [=[.TH TANDEM-SERVER 1 "@date@" "tandem @version@" "tandem"
.SH NAME
tandem-server \- one event-loop instance of the tandem web application
.SH SYNOPSIS
.B tandem-server
[\fIOPTIONS\fR]
.SH DESCRIPTION
.B tandem-server
serves the tandem HTTP application from a single libuv event loop. Several instances run side by
side behind HAProxy, one per port, each as the systemd unit
.BR tandem@ PORT .service
with its options in
.IR /etc/tandem/ PORT .env .
It answers \fB/health\fR (200, or 503 while draining), \fB/api/whoami\fR, \fB/api/session\fR,
\fB/api/load\-test\fR, \fB/api/metrics\fR and \fB/metrics\fR (Prometheus).
.SH OPTIONS
A bad value is reported on one line and the exit status is 2, before anything listens.
.PP
.nf
@help@
.fi
.SH SIGNALS
.TP
.B SIGTERM, SIGINT
Start the drain: \fB/health\fR answers 503 at once, requests are still served for
\fB\-\-drain\-grace\fR (so the balancer can take the instance out), then the listener closes,
in\-flight requests finish and the process exits 0, by \fB\-\-drain\-timeout\fR at the latest.
.TP
.B a second SIGTERM
Exit at once, with status 1.
.SH SYSTEMD
The server notifies systemd (READY, STATUS, STOPPING) and, when \fBWatchdogSec\fR is set, pings
the watchdog from its event loop, so a hung loop is restarted. Logs are JSON lines on standard
output, kept by journald: \fBjournalctl \-u tandem@3001\fR.
.SH FILES
.TP
.I /etc/tandem/PORT.env
The instance's TANDEM_* settings (its id above all).
.TP
.I /lib/systemd/system/tandem@.service, /lib/systemd/system/tandem.target
The units; \fBsystemctl start tandem.target\fR starts every enabled instance.
.TP
.I /usr/share/tandem/haproxy/haproxy.cfg.j2
The HAProxy configuration template the instances are meant to run behind.
.SH SEE ALSO
.BR systemctl (1),
.BR systemd.service (5),
.BR haproxy (1)
]=])
string(CONFIGURE "${page}" page @ONLY)

write_gzipped_page(manpage.cmake "${page}" "${OUTPUT}")
