#!/usr/bin/env bash
# Benchmarks tandem-server against nginx on GET /api/whoami, and measures tandem-server's memory.
#
# Throughput: tandem-server and an nginx (1 worker, `return 200` with a JSON body of the same
# shape, access_log off) are loaded in turn by wrk with identical settings, for several rounds;
# the medians give the ratios tandem/nginx for requests/s and p99 latency. Both run in this one
# invocation on the same machine, so drift on a shared, noisy host cancels out of the ratios.
# Memory: VmRSS of an idle tandem-server, then with many idle keep-alive connections held open.
#
# Targets: requests/s ratio >= 1.0, p99 ratio <= 1.5, idle RSS <= 8 MiB,
#          RSS with 10,000 idle keep-alive connections <= 64 MiB.
# Exit: 0 every run valid (targets may be missed; see --fail-on-miss), 1 something broke or a run
# was INVALID, 2 bad usage, 3 a target missed with --fail-on-miss, 77 a prerequisite missing.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
prog="server-vs-nginx"

usage() {
  cat <<EOF
Usage: bench/server-vs-nginx.sh [options]

Measures tandem-server against nginx on GET /api/whoami with wrk (alternating, same settings,
several rounds) and prints the medians, the ratios tandem/nginx and PASS/MISS against the targets;
then measures tandem-server's RSS idle and with many idle keep-alive connections.

Options:
  --server PATH           tandem-server binary (default: build Release into build-release/)
  --duration SECONDS      length of each measured wrk run (default 5)
  --rounds N              rounds, each one run per server, order alternating (default 3)
  --connections N         wrk connections, -c (default 64)
  --threads N             wrk threads, -t (default 1)
  --warmup SECONDS        unmeasured wrk run per server before the rounds (default 2)
  --idle-connections N    idle keep-alive connections for the memory figure (default 10000)
  --pin                   run the servers on CPU 0 and wrk on CPU 1 (taskset); default: no pinning
  --skip-throughput       only the memory figures
  --skip-memory           only the throughput comparison
  --smoke                 quick check that the benchmark works: 1 s runs, 1 round, 1 s warm-up,
                          1000 idle connections, nothing saved; exit 0 when everything ran,
                          whatever the figures (options after --smoke still apply)
  --results-dir DIR       where the JSON report is saved (default bench/results; not with --smoke)
  --no-install-deps       do not call packaging/install-deps.sh bench first
  --fail-on-miss          exit 3 when a target is missed (default: exit 0 for any valid run)
  -h, --help              this text

Exit status: 0 all runs valid, 1 something broke or a run was INVALID (socket errors or HTTP
errors counted), 2 bad usage, 3 target missed (only with --fail-on-miss), 77 prerequisite missing.
EOF
}

die() { echo "$prog: $*" >&2; exit 1; }
usage_error() { echo "$prog: $*" >&2; echo "Try 'bench/server-vs-nginx.sh --help'." >&2; exit 2; }

# Options. Each is empty until given, so --smoke can fill in the ones not given explicitly.
server="" duration="" rounds="" connections="" threads="" warmup="" idle_count=""
pin=0 smoke=0 install_deps=1 fail_on_miss=0 skip_throughput=0 skip_memory=0
results_dir="$here/results"

need_value() { if [ $# -lt 2 ] || [ -z "$2" ]; then usage_error "$1 needs a value"; fi; }
positive_int() {
  local name=$1 value=${2%s}  # "5s" and "5" both mean five seconds.
  [[ "$value" =~ ^[1-9][0-9]{0,6}$ ]] || usage_error "$name wants a positive whole number, not '$2'"
  printf '%s' "$value"
}

while [ $# -gt 0 ]; do
  case "$1" in
    --server) need_value "$@"; server=$2; shift ;;
    --duration) need_value "$@"; duration=$(positive_int "$1" "$2"); shift ;;
    --rounds) need_value "$@"; rounds=$(positive_int "$1" "$2"); shift ;;
    --connections) need_value "$@"; connections=$(positive_int "$1" "$2"); shift ;;
    --threads) need_value "$@"; threads=$(positive_int "$1" "$2"); shift ;;
    --warmup) need_value "$@"; warmup=$(positive_int "$1" "$2"); shift ;;
    --idle-connections) need_value "$@"; idle_count=$(positive_int "$1" "$2"); shift ;;
    --results-dir) need_value "$@"; results_dir=$2; shift ;;
    --pin) pin=1 ;;
    --smoke) smoke=1 ;;
    --skip-throughput) skip_throughput=1 ;;
    --skip-memory) skip_memory=1 ;;
    --no-install-deps) install_deps=0 ;;
    --fail-on-miss) fail_on_miss=1 ;;
    -h|--help) usage; exit 0 ;;
    *) usage_error "unknown option '$1'" ;;
  esac
  shift
done
if [ "$smoke" = 1 ]; then
  : "${duration:=1}" "${rounds:=1}" "${warmup:=1}" "${idle_count:=1000}"
fi
: "${duration:=5}" "${rounds:=3}" "${connections:=64}" "${threads:=1}" "${warmup:=2}"
: "${idle_count:=10000}"
[ "$skip_throughput" = 1 ] && [ "$skip_memory" = 1 ] && usage_error "nothing left to measure"
[ "$threads" -le "$connections" ] || usage_error "--threads must not exceed --connections"

# Prerequisites. install-deps.sh is a no-op when everything is present; a missing tool after it
# (say, run without root on a bare machine) is exit 77; the test suite counts that as a failure.
if [ "$install_deps" = 1 ]; then
  "$repo/packaging/install-deps.sh" bench >&2 ||
    echo "$prog: packaging/install-deps.sh bench failed; checking for the tools anyway" >&2
fi
required=(wrk nginx python3 curl awk)
[ "$pin" = 1 ] && required+=(taskset)
[ -z "$server" ] && required+=(cmake)
for tool in "${required[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || { echo "$prog: '$tool' is missing (packaging/install-deps.sh bench installs it)" >&2; exit 77; }
done
if [ "$pin" = 1 ] && [ "$(nproc --all)" -lt 2 ]; then
  usage_error "--pin needs at least 2 CPUs"
fi

# Everything this script starts is recorded here and stopped on any exit.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tandem-bench.XXXXXX")
started_pids=()
idle_pid=""
wrk_pid=""

# Stops one process we started: SIGTERM twice (tandem-server's second SIGTERM skips the drain
# grace), then SIGKILL if it is still there after about five seconds.
stop_pid() {
  local pid=$1 i
  [ -n "$pid" ] || return 0
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  sleep 0.1
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# shellcheck disable=SC2317  # Reached through the traps below.
cleanup() {
  local rc=$? pid
  trap - EXIT INT TERM
  stop_pid "$wrk_pid"
  stop_pid "$idle_pid"
  for pid in "${started_pids[@]}"; do stop_pid "$pid"; done
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A client needs one descriptor per connection and so does the server: raise this shell's soft
# limit (inherited by everything started below) to the hard limit.
hard_nofile=$(ulimit -Hn)
if [ "$hard_nofile" = unlimited ]; then hard_nofile=1048576; fi
ulimit -n "$hard_nofile" 2>/dev/null || true
nofile=$(ulimit -n)

pin_server=() pin_client=()
if [ "$pin" = 1 ]; then pin_server=(taskset -c 0); pin_client=(--cpu 1); fi

# Loopback ports that are free now, below the usual ephemeral range (so that no outgoing
# connection of the idle client can sit on them).
free_ports() {
  python3 - "$1" <<'PY'
import random, socket, sys
wanted, found = int(sys.argv[1]), []
for _ in range(1000):
    if len(found) == wanted:
        break
    port = random.randrange(20000, 32000)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    if port not in found:
        found.append(port)
if len(found) != wanted:
    sys.exit("no free loopback ports found")
print(" ".join(map(str, found)))
PY
}

# What /proc says about a process, read by tests/harness/procstat.py: VmRSS in KiB, open
# descriptors, the pids whose parent is PID (nginx's worker under its master).
procstat() { python3 "$repo/tests/harness/procstat.py" "$@"; }
rss_kib() { procstat rss-kib "$1"; }
fd_count() { procstat fds "$1"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
children_of() { procstat children "$1"; }

# Waits until GET /api/whoami on PORT answers, while PID lives; shows LOG when it does not.
wait_ready() {
  local name=$1 pid=$2 port=$3 log=$4 i
  for ((i = 0; i < 100; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "$prog: $name exited before answering on port $port; its output:" >&2
      tail -n 30 "$log" >&2 || true
      exit 1
    fi
    if curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$port/api/whoami" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "$prog: $name did not answer GET /api/whoami on port $port within 10 s; its output:" >&2
  tail -n 30 "$log" >&2 || true
  exit 1
}

# Checks that one answer is what the benchmark means to measure: 200, JSON, the whoami fields.
check_answer() {
  local name=$1 port=$2 out=$tmp/answer-$1
  curl -sS -i --max-time 5 "http://127.0.0.1:$port/api/whoami" -o "$out" ||
    die "$name: GET /api/whoami failed"
  python3 - "$name" "$out" <<'PY' || exit 1
import json, sys
name, raw = sys.argv[1], open(sys.argv[2], "rb").read()
head, _, body = raw.partition(b"\r\n\r\n")
lines = head.decode("latin-1").split("\r\n")
status = lines[0].split(" ")[1] if len(lines[0].split(" ")) > 1 else "?"
headers = {l.split(":", 1)[0].strip().lower(): l.split(":", 1)[1].strip()
           for l in lines[1:] if ":" in l}
problems = []
if status != "200":
    problems.append(f"status {status}")
if not headers.get("content-type", "").startswith("application/json"):
    problems.append(f"Content-Type {headers.get('content-type')!r}")
try:
    doc = json.loads(body)
    missing = [k for k in ("container", "pid", "hostname", "timestamp") if k not in doc]
    if missing:
        problems.append("body lacks " + ", ".join(missing))
except ValueError:
    problems.append(f"body is not JSON: {body[:80]!r}")
if problems:
    sys.exit(f"server-vs-nginx: {name}'s GET /api/whoami is not what is measured: "
             + "; ".join(problems))
print(f"  {name:<14}{lines[0]}, {len(raw)} bytes: {body.decode(errors='replace')}")
PY
}

# --- tandem-server ------------------------------------------------------------------------------
if [ -z "$server" ]; then
  echo "building tandem-server (Release) in $repo/build-release ..."
  if ! (cd "$repo" &&
        cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DTANDEM_BUILD_TESTS=OFF &&
        cmake --build build-release -j2) >"$tmp/build.log" 2>&1; then
    tail -n 40 "$tmp/build.log" >&2
    die "the Release build failed (output above)"
  fi
  server=$repo/build-release/server/tandem-server
fi
[ -x "$server" ] || die "no tandem-server binary at '$server'"
server=$(cd "$(dirname "$server")" && pwd)/$(basename "$server")

tandem_pid=""
start_tandem() {  # start_tandem PORT LOG: sets tandem_pid
  "${pin_server[@]}" "$server" --port "$1" --id app-bench >"$2" 2>&1 &
  tandem_pid=$!
  started_pids+=("$tandem_pid")
  wait_ready tandem-server "$tandem_pid" "$1" "$2"
}

# --- nginx --------------------------------------------------------------------------------------
nginx_pid=""
start_nginx() {  # start_nginx PORT: sets nginx_pid (the master)
  local port=$1 dir=$tmp/nginx
  mkdir -p "$dir/temp"
  # Same body shape as tandem-server's whoami; $pid is the worker's pid, filled in per response.
  local body
  body="{\"container\":\"nginx\",\"pid\":\$pid,\"hostname\":\"$(uname -n)\",\"timestamp\":1764180000000}"
  cat >"$dir/nginx.conf" <<EOF
# Generated by bench/server-vs-nginx.sh: the reference server for GET /api/whoami.
# Every path is inside this directory, so nothing under /etc/nginx or /var/log is used.
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events {
    worker_connections 4096;
}
http {
    access_log off;
    client_body_temp_path $dir/temp/body;
    proxy_temp_path $dir/temp/proxy;
    fastcgi_temp_path $dir/temp/fastcgi;
    uwsgi_temp_path $dir/temp/uwsgi;
    scgi_temp_path $dir/temp/scgi;
    # nginx closes a keep-alive connection after keepalive_requests requests (1000 by default),
    # which makes wrk reconnect every 1000 requests; tandem-server never does that, so a high
    # limit keeps the comparison fair.
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    server {
        listen 127.0.0.1:$port;
        location = /api/whoami {
            default_type application/json;
            # tandem-server sends X-Container-Id on every response; nginx does the same work.
            add_header X-Container-Id nginx;
            return 200 '$body';
        }
        location / {
            return 404;
        }
    }
}
EOF
  nginx -t -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" >"$dir/check.log" 2>&1 || {
    cat "$dir/check.log" >&2; die "nginx rejected the generated configuration"; }
  "${pin_server[@]}" nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" >"$dir/out.log" 2>&1 &
  nginx_pid=$!
  started_pids+=("$nginx_pid")
  wait_ready nginx "$nginx_pid" "$port" "$dir/error.log"
}

# --- wrk ----------------------------------------------------------------------------------------
# run_wrk NAME PORT SECONDS OUT PID...: one wrk run (tests/harness/wrk.py, bounded to SECONDS + 30),
# its output in OUT followed by a SERVER-CPU line: the CPU time of the PIDs during the run and
# the machine's busy time, from which wrk_report.py tells how noisy the run was.
run_wrk() {
  local name=$1 port=$2 seconds=$3 out=$4 rc=0 pid
  shift 4
  local watch=()
  for pid in "$@"; do watch+=(--watch "$pid"); done
  # In the background and waited for, so that an interrupt runs the trap at once: bash defers
  # the trap while a foreground child runs.
  python3 "$repo/tests/harness/wrk.py" --out "$out" --script "$here/wrk-json.lua" \
    --threads "$threads" --connections "$connections" --seconds "$seconds" --latency \
    "${pin_client[@]}" "${watch[@]}" "http://127.0.0.1:$port/api/whoami" &
  wrk_pid=$!
  wait "$wrk_pid" || rc=$?
  wrk_pid=""
  if [ "$rc" != 0 ]; then
    cat "$out" >&2
    die "wrk against $name failed (exit $rc)"
  fi
  for pid in "$@"; do
    kill -0 "$pid" 2>/dev/null || die "$name (pid $pid) died during the wrk run"
  done
}

invalid=0
# report_run LABEL FILE: prints the run's line; an INVALID run is remembered, a parse failure ends.
report_run() {
  local rc=0 line
  line=$(python3 "$here/wrk_report.py" line "$2") || rc=$?
  printf '%s%s\n' "$1" "$line"
  case "$rc" in
    0) ;;
    1) invalid=1 ;;
    *) echo "wrk output:" >&2; cat "$2" >&2; die "could not read wrk's results" ;;
  esac
}

# --- the run ------------------------------------------------------------------------------------
read -r tandem_port nginx_port memory_port <<<"$(free_ports 3)"
mode="full"; [ "$smoke" = 1 ] && mode="smoke"
echo "== tandem-server vs nginx ($mode): $(date -u '+%Y-%m-%d %H:%M:%SZ') on $(uname -n)," \
  "$(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "   tandem-server: $server ($("$server" --version 2>/dev/null | head -n1 || echo 'version unknown'))"
echo "   $(nginx -v 2>&1 | sed 's/^nginx version: //'), 1 worker;" \
  "$(wrk -v 2>&1 | head -n1 | cut -d' ' -f1-2); pinning: $([ "$pin" = 1 ] && echo 'servers CPU 0, wrk CPU 1' || echo none);" \
  "open-file limit $nofile"

summary_rc=0
rounds_dir=$tmp/rounds
mkdir -p "$rounds_dir"
if [ "$skip_throughput" = 0 ]; then
  start_tandem "$tandem_port" "$tmp/tandem.log"
  start_nginx "$nginx_port"
  mapfile -t nginx_pids < <(echo "$nginx_pid"; children_of "$nginx_pid")
  echo "== answers checked:"
  check_answer tandem-server "$tandem_port"
  check_answer nginx "$nginx_port"

  wrk_args="wrk -t$threads -c$connections -d${duration}s --latency"
  echo "== $wrk_args, GET /api/whoami; ${warmup} s warm-up each, then $rounds round(s), order alternating"
  run_wrk tandem-server "$tandem_port" "$warmup" "$rounds_dir/warmup-tandem.txt" "$tandem_pid"
  report_run "warm-up  tandem-server " "$rounds_dir/warmup-tandem.txt"
  run_wrk nginx "$nginx_port" "$warmup" "$rounds_dir/warmup-nginx.txt" "${nginx_pids[@]}"
  report_run "warm-up  nginx         " "$rounds_dir/warmup-nginx.txt"

  for ((round = 1; round <= rounds; round++)); do
    # Alternating which server goes first cancels a steady drift of the machine between them.
    if ((round % 2 == 1)); then order=(tandem nginx); else order=(nginx tandem); fi
    for who in "${order[@]}"; do
      out=$rounds_dir/round-$round-$who.txt
      if [ "$who" = tandem ]; then
        run_wrk tandem-server "$tandem_port" "$duration" "$out" "$tandem_pid"
        report_run "round $round  tandem-server " "$out"
      else
        run_wrk nginx "$nginx_port" "$duration" "$out" "${nginx_pids[@]}"
        report_run "round $round  nginx         " "$out"
      fi
    done
  done
  echo "   tandem-server RSS after the load: $(mib "$(rss_kib "$tandem_pid")")"
  stop_pid "$nginx_pid"
  stop_pid "$tandem_pid"
fi

# idle_answer WORD SECONDS: waits for the idle client's line "WORD {json}"; sets reply to the JSON.
reply=""
idle_answer() {
  local want=$1 line="" i
  for ((i = 0; i < $2; i++)); do
    if read -r -t 1 line <&"$idle_r"; then
      if [[ "$line" == "$want "* ]]; then reply=${line#"$want "}; return 0; fi
      die "the idle-connection client said '$line' where '$want ...' was expected"
    fi
    if ! kill -0 "$idle_pid" 2>/dev/null; then
      cat "$tmp/idle.err" >&2 || true
      die "the idle-connection client exited before answering $want"
    fi
  done
  die "the idle-connection client did not answer $want within $2 s"
}
json_field() { python3 -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

# --- memory -------------------------------------------------------------------------------------
memory_failed=0
memory_missed=0
if [ "$skip_memory" = 0 ]; then
  echo "== memory: a fresh tandem-server, idle, then with $idle_count idle keep-alive connections"
  start_tandem "$memory_port" "$tmp/tandem-memory.log"
  mem_pid=$tandem_pid
  sleep 1  # Let start-up allocations settle before reading VmRSS.
  rss_idle=$(rss_kib "$mem_pid")
  if [ "$rss_idle" -le 8192 ]; then idle_verdict=PASS; else idle_verdict=MISS; memory_missed=1; fi
  printf '   idle RSS                          %10s   target <= 8 MiB    %s\n' \
    "$(mib "$rss_idle")" "$idle_verdict"

  server_nofile=$(awk '/^Max open files/ { print $4 }' "/proc/$mem_pid/limits")
  if [ "$server_nofile" != unlimited ] && [ "$server_nofile" -lt $((idle_count + 16)) ]; then
    echo "   warning: tandem-server's open-file limit is $server_nofile, too low for" \
      "$idle_count connections (this shell's hard limit is $(ulimit -Hn))"
  fi

  # The client talks by lines over two FIFOs. Both ends are opened read-write here so that no open
  # blocks; whether the client still lives is checked while waiting for its answer instead.
  mkfifo "$tmp/idle.in" "$tmp/idle.out"
  exec {idle_w}<>"$tmp/idle.in" {idle_r}<>"$tmp/idle.out"
  python3 "$here/idle_conns.py" --port "$memory_port" --count "$idle_count" \
    <"$tmp/idle.in" >"$tmp/idle.out" 2>"$tmp/idle.err" &
  idle_pid=$!
  started_pids+=("$idle_pid")
  idle_answer READY 180
  ready_json=$reply
  held=$(json_field "$ready_json" ok)
  setup_s=$(json_field "$ready_json" seconds)
  sleep 1  # Let the server finish whatever each connection's last read left it to do.
  rss_conns=$(rss_kib "$mem_pid")
  server_fds=$(fd_count "$mem_pid")
  echo check >&"$idle_w"
  idle_answer OPEN 30
  still_open=$(json_field "$reply" open)
  echo quit >&"$idle_w" || true
  stop_pid "$idle_pid"
  idle_pid=""
  stop_pid "$mem_pid"

  per_conn=$(awk -v a="$rss_idle" -v b="$rss_conns" -v n="$held" \
    'BEGIN { if (n > 0) printf "%.2f", (b - a) / n; else print "n/a" }')
  if [ "$held" -ne "$idle_count" ] || [ "$still_open" -ne "$held" ]; then
    memory_failed=1
    conns_verdict="INVALID"
  elif [ "$idle_count" -ne 10000 ]; then
    conns_verdict="(target is for 10000 connections)"
  elif [ "$rss_conns" -le 65536 ]; then
    conns_verdict=PASS
  else
    conns_verdict=MISS; memory_missed=1
  fi
  printf '   RSS with %5d idle connections    %10s   target <= 64 MiB   %s\n' \
    "$held" "$(mib "$rss_conns")" "$conns_verdict"
  echo "   that is $per_conn KiB per connection; set up in ${setup_s} s; server had $server_fds" \
    "open descriptors; $still_open of $held still open when measured"
  if [ "$held" -ne "$idle_count" ]; then
    echo "   INVALID: tandem-server held only $held of $idle_count connections: $ready_json"
  elif [ "$still_open" -ne "$held" ]; then
    echo "   INVALID: tandem-server closed $((held - still_open)) of the idle connections before" \
      "they were measured"
  fi
  printf '{"idle_rss_kib":%d,"connections_requested":%d,"connections_held":%d,"rss_with_connections_kib":%d,"server_fds":%d,"still_open":%d,"setup_seconds":%s}\n' \
    "$rss_idle" "$idle_count" "$held" "$rss_conns" "$server_fds" "$still_open" "$setup_s" \
    >"$tmp/memory.json"
fi

# --- summary ------------------------------------------------------------------------------------
if [ "$skip_throughput" = 0 ]; then
  echo "== result"
  summary_args=(summary --dir "$rounds_dir" --rounds "$rounds"
    --meta "server=$server" --meta "nginx=$(nginx -v 2>&1 | sed 's/^nginx version: //')"
    --meta "wrk=$wrk_args" --meta "pin=$pin" --meta "host=$(uname -n)" --meta "cpus=$(nproc)"
    --meta "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)")
  [ -f "$tmp/memory.json" ] && summary_args+=(--memory "$tmp/memory.json")
  if [ "$smoke" = 0 ]; then
    mkdir -p "$results_dir"
    report_file=$results_dir/server-vs-nginx-$(date -u +%Y%m%d-%H%M%S).json
    summary_args+=(--json "$report_file")
  fi
  python3 "$here/wrk_report.py" "${summary_args[@]}" || summary_rc=$?
  case "$summary_rc" in
    0|3) ;;
    1) invalid=1 ;;
    *) die "could not summarise the runs" ;;
  esac
  [ -n "${report_file:-}" ] && echo "   report saved: $report_file"
fi

if [ "$invalid" = 1 ] || [ "$memory_failed" = 1 ]; then
  echo "INVALID: see the lines marked INVALID above" >&2
  exit 1
fi
if [ "$fail_on_miss" = 1 ] && { [ "$summary_rc" = 3 ] || [ "$memory_missed" = 1 ]; }; then
  exit 3
fi
exit 0
