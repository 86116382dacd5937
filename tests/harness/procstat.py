"""What /proc says about a process and about the machine, read in one place: CPU time, resident
memory, children, threads, descriptors, the machine's busy time and load. Standard library only,
so that benchmarks and shell scripts can use it as well as the tests.

    before = procstat.cpu_ticks(pid)          # utime + stime of all its threads, clock ticks
    procstat.rss_bytes(pid)                   # VmRSS
    procstat.children_of(pid)                 # a HAProxy master's worker, nginx's worker
    procstat.busy_cpus_now()                  # how many CPUs the machine keeps busy now

Every per-process reader answers None (0 for counts, [] for lists) when the process is gone, since
a process may end between two readings; a process that exited but is not reaped yet still answers
with its final figures.

From a shell (bench/server-vs-nginx.sh):

    python3 tests/harness/procstat.py cpu-ticks PID...     # summed over the pids
    python3 tests/harness/procstat.py busy-ticks | rss-kib PID | fds PID | children PID
"""

import os
import platform
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
# Fields of /proc/PID/stat counted after the ")" that ends the command name (which may hold
# spaces and parentheses): index 0 is field 3 of proc(5), the state.
_PPID, _UTIME, _STIME, _STARTTIME = 1, 11, 12, 19


def stat_fields(pid):
    """The fields of /proc/PID/stat after the command name, as strings; None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def cpu_ticks(pid):
    """utime + stime of a process (all its threads), in clock ticks; None when it is gone."""
    fields = stat_fields(pid)
    return None if fields is None else int(fields[_UTIME]) + int(fields[_STIME])


def cpu_seconds(pid):
    """cpu_ticks() in seconds; None when the process is gone."""
    ticks = cpu_ticks(pid)
    return None if ticks is None else ticks / CLK_TCK


def total_cpu_ticks(pids):
    """cpu_ticks() summed over pids, a gone process counting 0."""
    return sum(cpu_ticks(pid) or 0 for pid in pids)


def start_ticks(pid):
    """When the process started, in clock ticks after boot: with the pid, it names one process,
    whereas a pid alone may have been reused. None when it is gone."""
    fields = stat_fields(pid)
    try:
        return int(fields[_STARTTIME])
    except (TypeError, IndexError, ValueError):
        return None


def pids():
    """Every process id /proc lists now."""
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def children_of(pid):
    """The processes whose parent is pid."""
    found = []
    for candidate in pids():
        fields = stat_fields(candidate)
        try:
            if fields is not None and int(fields[_PPID]) == pid:
                found.append(candidate)
        except (IndexError, ValueError):
            continue
    return found


def _entries(pid, folder):
    """How many entries /proc/PID/<folder> lists; 0 when the process is gone."""
    try:
        return len(os.listdir(f"/proc/{pid}/{folder}"))
    except OSError:
        return 0


def thread_count(pid):
    """How many threads the process runs; 0 when it is gone."""
    return _entries(pid, "task")


def status(pid):
    """/proc/PID/status as {name: value} with the values stripped; {} when it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8", errors="replace") as lines:
            return {name: value.strip() for name, _, value in
                    (line.partition(":") for line in lines) if value}
    except OSError:
        return {}


def rss_kib(pid):
    """VmRSS, the process's resident memory, in KiB; None when it is gone."""
    value = status(pid).get("VmRSS")
    return None if value is None else int(value.split()[0])


def rss_bytes(pid):
    """VmRSS in bytes; None when the process is gone."""
    kib = rss_kib(pid)
    return None if kib is None else kib * 1024


def fd_count(pid):
    """How many descriptors the process holds open; 0 when it is gone."""
    return _entries(pid, "fd")


def cmdline(pid):
    """The raw command line (NUL-separated), as the process may have rewritten it; None when it
    is gone."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as raw:
            return raw.read()
    except OSError:
        return None


def machine_busy_ticks():
    """Busy time of all CPUs together (user, nice, system, irq, softirq, steal), in ticks."""
    with open("/proc/stat", encoding="ascii") as stat:
        fields = stat.readline().split()[1:]
    return sum(int(fields[i]) for i in (0, 1, 2, 5, 6, 7))


def loadavg():
    """The 1, 5 and 15 minute load averages as /proc/loadavg writes them, e.g. "0.12 0.30 0.25"."""
    with open("/proc/loadavg", encoding="ascii") as f:
        return " ".join(f.read().split()[:3])


def busy_cpus_now(seconds=1.0):
    """How many CPUs the machine keeps busy now, sampled over `seconds`."""
    before = machine_busy_ticks()
    time.sleep(seconds)
    return (machine_busy_ticks() - before) / CLK_TCK / seconds


def machine_description():
    """{"host", "cpus", "cpu_model", "memory", "kernel"}: what a benchmark report says the figures
    were measured on."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = ""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            kib = int(f.readline().split()[1])
            memory = f"{kib / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return {"host": platform.node(), "cpus": os.cpu_count(), "cpu_model": model,
            "memory": memory, "kernel": platform.release()}


def main(argv):
    """The shell's entry point (see the module's text); prints one value per call."""
    usage = ("usage: procstat.py cpu-ticks PID... | busy-ticks | rss-kib PID | fds PID "
             "| children PID")
    if not argv:
        print(usage, file=sys.stderr)
        return 2
    command, numbers = argv[0], argv[1:]
    try:
        ids = [int(number) for number in numbers]
    except ValueError:
        print(usage, file=sys.stderr)
        return 2
    if command == "cpu-ticks":
        print(total_cpu_ticks(ids))
    elif command == "busy-ticks" and not ids:
        print(machine_busy_ticks())
    elif command == "rss-kib" and len(ids) == 1:
        kib = rss_kib(ids[0])
        if kib is None:
            print(f"procstat: no process {ids[0]}", file=sys.stderr)
            return 1
        print(kib)
    elif command == "fds" and len(ids) == 1:
        print(fd_count(ids[0]))
    elif command == "children" and len(ids) == 1:
        print("\n".join(map(str, children_of(ids[0]))))
    else:
        print(usage, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
