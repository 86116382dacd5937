"""A real systemd, booted in a container, for the system tests.

    with SystemdContainer() as guest:           # boots; powers off and removes all on exit
        guest.write("/var/tmp/tandem.deb", data)
        guest.run(["dpkg", "-i", "/var/tmp/tandem.deb"])
        guest.systemctl("start", "tandem.target")

The machines this runs on have Debian 12 with a PID 1 that is not systemd and no Docker, so the
guest is systemd-nspawn booting the host's own system (see the team's notes on the systemd
sandbox):
- its root is an overlayfs whose lower layer is the host's / and whose upper layer is a fresh
  folder: everything installed on the host is there, and whatever the guest writes disappears
  with the folder;
- it gets its own machine id, host services it must not boot are masked, and Debian's Docker-style
  /usr/sbin/policy-rc.d (which forbids maintainer scripts to start or stop services) is removed,
  so the guest behaves like a real server;
- `systemd-nspawn --register=no --keep-unit --system-call-filter=bpf -D ROOT -M NAME -b`, in the
  background: --register=no because the host has no machined, and bpf() allowed because nspawn's
  seccomp filter refuses it otherwise, which leaves systemd without cgroup BPF (IPAddressDeny=,
  IPAccounting=); the guest shares the host's network namespace, so its ports answer on the host,
  unless it is given a bridge (network_bridge: --network-bridge, a network namespace of its own
  whose veth `host0` is attached to that bridge; tests/harness/fleet.py boots several such);
- commands run inside with `nsenter -t <guest init> -a` (machinectl needs machined), and files are
  reached through /proc/<guest init>/root.

One guest at a time on this machine: guests share the host's network namespace (ports 80, 2222,
3001, 3002, 8404), so boot() takes an exclusive flock on LOCK_PATH, whoever's test or tool boots
the guest, and remove() releases it (waiting at most LOCK_TIMEOUT for another guest to go). A
fleet of guests (tests/harness/fleet.py) takes the lock once for all of them (take_lock()) and
boots each with lock=False.

A guest can be powered off and on again (power_off(), power_on()): its disk, the overlay's upper
folder, is kept in between, so it boots again with what was installed and enabled, like a server
after a power cut.

Nothing is left behind: every guest lives in GUESTS_DIR/<owner pid>-<token>; the teardown (power
off, kill what is left, unmount, remove) runs on exit from the `with`, also on an exception or a
KeyboardInterrupt (processes.raise_on_termination turns SIGTERM and SIGHUP into one), with those
signals held off while it runs; a reaper process (parent-death signal) does it if the harness is
killed outright (SIGKILL, a CTest timeout); and each new guest first sweeps the guests of owners
that no longer run.
"""

import fcntl
import os
import pathlib
import secrets
import shutil
import signal
import subprocess
import sys
import time

from . import procstat
from .waiting import WaitTimeout, wait_until

GUESTS_DIR = pathlib.Path("/var/tmp/tandem-guests")
LOCK_PATH = pathlib.Path("/var/tmp/tandem-guests.lock")
LOCK_TIMEOUT = 600.0
# Host services that would slow the boot or take ports: with them masked the guest is up in about
# a second. haproxy is masked until a test has configured it (see unmask()).
MASKED_UNITS = (
    "postgresql.service", "nginx.service", "redis-server.service", "haproxy.service",
    "console-getty.service", "getty@.service", "container-getty@.service",
    "systemd-timesyncd.service", "e2scrub_reap.service", "systemd-pstore.service",
    "apt-daily.timer", "apt-daily-upgrade.timer", "man-db.timer", "dpkg-db-backup.timer",
    "e2scrub_all.timer", "fstrim.timer", "ssh.service", "ssh.socket",
    # The monitoring's: the tandem_monitoring role configures and starts them where it is applied.
    "prometheus.service", "prometheus-alertmanager.service", "prometheus-node-exporter.service",
    "prometheus-blackbox-exporter.service",
    # The pair of balancers' and the replicated sessions': the tandem_vip and redis roles
    # configure and start them where they are applied (Debian enables both at installation).
    "keepalived.service", "redis-sentinel.service",
)
CGROUP_PREFIX = "tandem-guest-"
REQUIRED_TOOLS = ("systemd-nspawn", "systemd-id128", "nsenter", "mount", "umount", "setpriv")
GUEST_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
             "LANG": "C.UTF-8", "TERM": "dumb", "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0",
             "DEBIAN_FRONTEND": "noninteractive", "HOME": "/root"}
BOOT_TIMEOUT = 60.0
# The reaper: a process that removes the guest if the harness dies without doing so (SIGKILL, a
# CTest timeout). setpriv --pdeathsig sends it SIGTERM when the harness's main thread ends.
REAPER = """
import os, signal, sys
sys.dont_write_bytecode = True
sys.path.insert(0, sys.argv[1])
from tests.harness.systemd_container import _remove
def reap(*_):
    _remove(sys.argv[2])
    sys.exit(0)
signal.signal(signal.SIGTERM, reap)
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
if os.getppid() != int(sys.argv[3]):
    reap()
while True:
    signal.pause()
"""
REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
POWEROFF_TIMEOUT = 40.0


class ContainerError(RuntimeError):
    pass


def check_host():
    """Fails loudly, saying what to install, when this host cannot boot a guest."""
    if os.geteuid() != 0:
        raise ContainerError("booting a systemd container needs root")
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        raise ContainerError(f"missing {', '.join(missing)}: install systemd-container and "
                             "util-linux (packaging/install-deps.sh test)")
    with open("/proc/filesystems", encoding="ascii") as filesystems:
        if "overlay" not in filesystems.read().split():
            raise ContainerError("the kernel has no overlay file system")


def _identity(pid):
    return f"{pid} {procstat.start_ticks(pid)}"


def _alive(identity):
    """True if the process recorded as "<pid> <start time>" still runs."""
    try:
        pid, start = identity.split()
        return str(procstat.start_ticks(int(pid))) == start
    except ValueError:
        return False


def _namespace_init(parent):
    """The child of parent that is PID 1 of its own PID namespace (NSpid: <pid> 1): the guest's
    init, and not nspawn's short-lived helper children."""
    for pid in procstat.pids():
        fields = procstat.status(pid)
        if int(fields.get("PPid") or 0) == parent and fields.get("NSpid", "").split()[1:] == ["1"]:
            return pid
    return None


def _mounts_under(directory):
    """Mount points at or below directory, deepest first, as this mount namespace sees them."""
    prefix = str(directory).rstrip("/") + "/"
    points = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as mountinfo:
        for line in mountinfo:
            point = line.split()[4].replace("\\040", " ")
            if point == str(directory) or point.startswith(prefix):
                points.append(point)
    return sorted(points, key=len, reverse=True)


def _cgroup_parents():
    """Where this process's guests get their own cgroup: below this process's cgroup in the
    unified hierarchy and in the legacy name=systemd one, when the host's PID 1 is not systemd
    (on a systemd host, nspawn --keep-unit stays inside the caller's unit instead). nspawn makes
    payload/ and supervisor/ below its own cgroup; giving each guest its own parent keeps guests
    apart, lets the teardown find every guest process, and leaves no empty cgroup behind."""
    if os.path.isdir("/run/systemd/system"):
        return []
    own = {}
    with open("/proc/self/cgroup", encoding="utf-8") as cgroups:
        for line in cgroups:
            number, controllers, path = line.rstrip("\n").split(":", 2)
            if number == "0" and controllers == "":
                own["cgroup2"] = path
            elif "name=systemd" in controllers.split(","):
                own["systemd"] = path
    parents = []
    with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
        for line in mountinfo:
            fields = line.split()
            separator = fields.index("-")
            point, fstype, options = fields[4], fields[separator + 1], fields[separator + 3]
            if fstype == "cgroup2" and "cgroup2" in own:
                parents.append(pathlib.Path(point + own.pop("cgroup2")))
            elif fstype == "cgroup" and "name=systemd" in options.split(",") and "systemd" in own:
                parents.append(pathlib.Path(point + own.pop("systemd")))
    return parents


def _remove_cgroup(top):
    """Kills every process left in the cgroup tree `top`, then removes it bottom-up."""
    if not top.is_dir():
        return
    for _ in range(100):
        pids = []
        for folder, _, _ in os.walk(top):
            try:
                pids += (pathlib.Path(folder) / "cgroup.procs").read_text().split()
            except OSError:
                pass
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
    for folder, _, _ in sorted(os.walk(top), key=lambda entry: len(entry[0]), reverse=True):
        try:
            os.rmdir(folder)
        except OSError:
            pass
    if top.exists():
        raise ContainerError(f"cannot remove the cgroup {top}")


def _kill(identity_file, sig=signal.SIGKILL):
    """Sends sig to the recorded process if it is still the same process."""
    try:
        identity = identity_file.read_text().strip()
    except OSError:
        return
    if _alive(identity):
        try:
            os.kill(int(identity.split()[0]), sig)
        except ProcessLookupError:
            pass


def _remove(directory, wait=10.0):
    """Kills a guest's processes, unmounts its root and removes its folder. Refuses to remove
    anything while a mount is left below it: removing through the overlay would write whiteouts
    over the whole host file system."""
    directory = pathlib.Path(directory)
    # SIGKILL to the guest's init ends its whole PID namespace; nspawn then exits by itself.
    _kill(directory / "init.pid")
    _kill(directory / "nspawn.pid")
    deadline = time.monotonic() + wait
    for name in ("init.pid", "nspawn.pid"):
        try:
            identity = (directory / name).read_text().strip()
        except OSError:
            continue
        try:
            wait_until(lambda: not _alive(identity), max(0.0, deadline - time.monotonic()),
                       0.05, f"{name} to exit")
        except WaitTimeout:
            pass  # Killed below with its cgroup, or found still mounted.
    for parent in _cgroup_parents():
        _remove_cgroup(parent / f"{CGROUP_PREFIX}{directory.name}")
    for point in _mounts_under(directory):
        if subprocess.run(["umount", point], stderr=subprocess.DEVNULL,
                          check=False).returncode != 0:
            subprocess.run(["umount", "-l", point], check=False)
    left = _mounts_under(directory)
    if left:
        raise ContainerError(f"cannot unmount {left}; {directory} is left in place")
    shutil.rmtree(directory, ignore_errors=True)
    if directory.exists():
        raise ContainerError(f"cannot remove {directory}")


def take_lock(timeout=LOCK_TIMEOUT):
    """Takes the machine-wide guest lock (flock, released when the returned file is closed or
    this process dies); waits for the guest of another run to go, at most timeout seconds."""
    handle = open(LOCK_PATH, "a+", encoding="ascii")
    waiting = False

    def take():
        nonlocal waiting
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if not waiting:
                handle.seek(0)
                print(f"waiting for {LOCK_PATH}, held by {handle.read().strip() or 'unknown'}",
                      file=sys.stderr, flush=True)
                waiting = True
            return False

    try:
        wait_until(take, timeout, 0.5, f"the guest lock {LOCK_PATH}")
    except WaitTimeout:
        handle.close()
        raise ContainerError(f"another guest still holds {LOCK_PATH} after {timeout} s") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}: {' '.join(sys.argv)[:200]}\n")
    handle.flush()
    return handle


def sweep_stale():
    """Removes the guests whose owning process is gone (a run killed with SIGKILL, say)."""
    swept = []
    for directory in sorted(GUESTS_DIR.iterdir()) if GUESTS_DIR.is_dir() else []:
        try:
            owner = (directory / "owner.pid").read_text().strip()
        except OSError:
            owner = ""
        if owner and _alive(owner):
            continue
        _remove(directory)
        swept.append(directory.name)
    for parent in _cgroup_parents():
        for group in parent.glob(f"{CGROUP_PREFIX}*"):
            if not (GUESTS_DIR / group.name[len(CGROUP_PREFIX):]).exists():
                _remove_cgroup(group)
                swept.append(group.name)
    return swept


class SystemdContainer:
    """One booted guest; a context manager (boot on enter, power off and remove on exit)."""

    def __init__(self, name_prefix="tandem", masked=MASKED_UNITS, bind_ro=(), network_bridge=None,
                 lock=True, reaper=True, setup=None):
        """`bind_ro`: host folders shown read-only at the same path inside the guest. The guest
        has a /tmp of its own, so a checkout under /tmp (CI's fresh clone, say) is otherwise
        invisible in it. `network_bridge`: the guest gets a network namespace of its own, whose
        only interface besides lo is `host0`, a veth attached to that bridge of the host (no
        address: the guest configures it, see tests/harness/fleet.py). `lock`: False when the
        caller holds the machine-wide guest lock already (take_lock()); `reaper`: False when the
        caller's own reaper removes the guest if the harness dies. `setup(root)`: called
        with the guest's root folder once it is mounted, before the first boot (files, units)."""
        self.name = f"{name_prefix}-{os.getpid()}-{secrets.token_hex(2)}"
        self.masked = tuple(masked)
        self.bind_ro = tuple(str(path) for path in bind_ro)
        self.network_bridge = network_bridge
        self.own_lock = lock
        self.own_reaper = reaper
        self.setup = setup
        self.directory = GUESTS_DIR / self.name
        self.root = self.directory / "root"
        self.console_log = self.directory / "console.log"
        self.nspawn = None
        self.init_pid = None
        self.reaper = None
        self.lock = None
        self.swept = []

    # --- lifecycle -------------------------------------------------------------------------

    def __enter__(self):
        try:
            self.boot()
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *exc):
        self.remove()

    def boot(self):
        check_host()
        if self.own_lock:
            self.lock = take_lock()
        self.swept = sweep_stale()
        self._prepare()
        return self.power_on()

    def _prepare(self):
        """The guest's folder, its reaper, and its root: the overlay, its own machine id, the
        masks, and the caller's setup."""
        upper, work = self.directory / "upper", self.directory / "work"
        for folder in (upper, work, self.root):
            folder.mkdir(parents=True)
        (self.directory / "owner.pid").write_text(_identity(os.getpid()))
        # The reaper inherits the lock, so that a harness killed outright keeps the next guest
        # waiting until its own is gone.
        if self.own_reaper:
            self.reaper = subprocess.Popen(
                ["setpriv", "--pdeathsig", "TERM", sys.executable, "-c", REAPER, str(REPO_ROOT),
                 str(self.directory), str(os.getpid())],
                stdin=subprocess.DEVNULL, start_new_session=True,
                pass_fds=(self.lock.fileno(),) if self.lock is not None else ())
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                        f"lowerdir=/,upperdir={upper},workdir={work}", str(self.root)],
                       check=True, stdin=subprocess.DEVNULL)
        # nspawn refuses to link journals of a guest that shares the host's machine id.
        machine_id = subprocess.run(["systemd-id128", "new"], check=True, text=True,
                                    stdout=subprocess.PIPE).stdout.strip()
        machine_id_path = self.root / "etc/machine-id"
        machine_id_path.unlink(missing_ok=True)
        machine_id_path.write_text(machine_id + "\n")
        units = self.root / "etc/systemd/system"
        for unit in self.masked:
            link = units / unit
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to("/dev/null")
        (self.root / "usr/sbin/policy-rc.d").unlink(missing_ok=True)
        if self.setup is not None:
            self.setup(self.root)

    def power_on(self):
        """Boots the guest from its root (again after power_off(), with whatever it had
        installed and enabled); returns once systemd reports running or degraded."""
        # nspawn starts in the guest's own cgroups (see _cgroup_parents): a shell moves itself
        # there and then becomes nspawn.
        enter = ""
        for parent in _cgroup_parents():
            group = parent / f"{CGROUP_PREFIX}{self.name}"
            group.mkdir(exist_ok=True)
            enter += f'echo $$ > "{group}/cgroup.procs" && '
        nspawn = ["systemd-nspawn", "--quiet", "--register=no", "--keep-unit",
                  "--system-call-filter=bpf", "--console=read-only", "-D", str(self.root),
                  "-M", self.name, "-b"] + [f"--bind-ro={path}" for path in self.bind_ro]
        if self.network_bridge:
            nspawn.append(f"--network-bridge={self.network_bridge}")
        with open(self.console_log, "ab") as console:
            self.nspawn = subprocess.Popen(
                ["sh", "-c", enter + 'exec "$@"', "sh"] + nspawn,
                stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
                start_new_session=True)
        (self.directory / "nspawn.pid").write_text(_identity(self.nspawn.pid))
        deadline = time.monotonic() + BOOT_TIMEOUT

        def guest_init():
            self._check_nspawn()
            return _namespace_init(self.nspawn.pid)

        self.init_pid = wait_until(
            guest_init, BOOT_TIMEOUT, 0.05, "the guest's init",
            error=lambda _: ContainerError("systemd-nspawn started no guest init:\n"
                                           + self.console()))
        (self.directory / "init.pid").write_text(_identity(self.init_pid))

        def system_state():
            self._check_nspawn()
            return self.run(["systemctl", "is-system-running"], check=False,
                            timeout=10).stdout.strip()

        # One deadline for both waits: the whole boot has BOOT_TIMEOUT.
        state = wait_until(
            system_state, max(0.0, deadline - time.monotonic()), 0.1, "the guest to boot",
            holds=lambda state: state in ("running", "degraded"),
            error=lambda state: ContainerError(f"the guest is still '{state}' after "
                                               f"{BOOT_TIMEOUT} s:\n" + self.console()))
        self.state_at_boot = state
        return self

    def power_off(self, force=False, timeout=POWEROFF_TIMEOUT):
        """Stops the guest and keeps its disk (power_on() boots it again). force: at once, as a
        power cut would, with `systemctl poweroff --force --force` (the reboot() system call: the
        kernel kills every process of the guest, no unit is stopped, nothing drains); else a
        clean shutdown, units stopped in order."""
        if self.nspawn is None or self.nspawn.poll() is not None:
            raise ContainerError("the guest is not running")
        argv = ["systemctl", "poweroff"] + (["--force", "--force"] if force else ["--no-block"])
        # Forced, the command is killed with the rest of the guest: its exit status says nothing.
        self.run(argv, check=False, timeout=10)
        try:
            self.nspawn.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ContainerError(f"the guest did not power off within {timeout} s:\n"
                                 + self.console()) from None
        self.init_pid = None

    def remove(self):
        """Powers the guest off (units stop as on a real shutdown), waits, kills what is left,
        unmounts and removes everything. SIGINT, SIGTERM and SIGHUP wait until it is done."""
        held = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
        try:
            if self.nspawn is not None and self.nspawn.poll() is None:
                if self.init_pid is not None:
                    self.run(["systemctl", "poweroff", "--no-block"], check=False, timeout=10)
                try:
                    self.nspawn.wait(timeout=POWEROFF_TIMEOUT)
                except subprocess.TimeoutExpired:
                    pass
            if self.directory.exists():
                _remove(self.directory)
            if self.nspawn is not None:
                try:
                    self.nspawn.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.nspawn.kill()
                    self.nspawn.wait()
        finally:
            if self.reaper is not None:
                self.reaper.kill()
                self.reaper.wait()
            if self.lock is not None:
                self.lock.close()
                self.lock = None
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)

    def _check_nspawn(self):
        if self.nspawn.poll() is not None:
            raise ContainerError(f"systemd-nspawn exited with {self.nspawn.returncode}:\n"
                                 + self.console())

    def cpu_seconds(self):
        """CPU time used by every process the guest has run, as its cgroup counts it (cgroup v2's
        cpu.stat), or None where the guest has no cgroup of this harness's (a systemd host)."""
        for parent in _cgroup_parents():
            stat = parent / f"{CGROUP_PREFIX}{self.name}" / "cpu.stat"
            try:
                lines = stat.read_text().splitlines()
            except OSError:
                continue
            for line in lines:
                if line.startswith("usage_usec "):
                    return int(line.split()[1]) / 1e6
        return None

    def console(self, lines=40):
        try:
            text = self.console_log.read_text(errors="replace")
        except OSError:
            return "(no console log)"
        return "\n".join(text.splitlines()[-lines:])

    # --- inside the guest ------------------------------------------------------------------

    def run(self, argv, check=True, timeout=120, input=None):
        """Runs argv inside the guest (all its namespaces) as root; returns the CompletedProcess
        with text stdout and stderr. check=True raises ContainerError with both on failure."""
        if self.init_pid is None:
            raise ContainerError("the guest is not booted")
        result = subprocess.run(["nsenter", "-t", str(self.init_pid), "-a"] + list(argv),
                                input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, timeout=timeout, env=GUEST_ENV, check=False,
                                stdin=None if input is not None else subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise ContainerError(f"in the guest, {' '.join(argv)} exited {result.returncode}:\n"
                                 f"{result.stdout}{result.stderr}")
        return result

    def systemctl(self, *args, check=True, timeout=120):
        return self.run(["systemctl", "--no-pager"] + list(args), check=check, timeout=timeout)

    def show(self, unit, *properties):
        """{property: value} of `systemctl show unit -p ...`."""
        text = self.systemctl("show", unit, *(f"--property={p}" for p in properties)).stdout
        return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)

    def main_pids(self, units):
        """{unit: its main process's pid}, 0 for a unit that does not run: a restart shows as a
        new pid."""
        return {unit: int(self.show(unit, "MainPID")["MainPID"]) for unit in units}

    def journal(self, *args):
        return self.run(["journalctl", "--no-pager", "--quiet"] + list(args)).stdout

    def path(self, guest_path):
        """The host path of a file in the guest, through its init's root (tmpfs mounts such as
        /run and /tmp included)."""
        return pathlib.Path(f"/proc/{self.init_pid}/root") / str(guest_path).lstrip("/")

    def write(self, guest_path, data, mode=0o644):
        path = self.path(guest_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            data = data.encode()
        path.write_bytes(data)
        os.chmod(path, mode)

    def unmask(self, *units):
        """Takes back masks set at boot, then reloads systemd."""
        for unit in units:
            link = self.path(f"/etc/systemd/system/{unit}")
            if link.is_symlink() and os.readlink(link) == "/dev/null":
                link.unlink()
        self.systemctl("daemon-reload")
