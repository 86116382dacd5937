#pragma once

namespace tandem::ctl {

// The process listening on this TCP port of the machine, for instances that are not systemd
// units (run by hand or by the test stack): the socket's inode from /proc/net/tcp{,6}, then the
// process holding it. 0 when none is found or /proc does not let us look (another user's).
unsigned listening_pid(int port);

}  // namespace tandem::ctl
