#!/usr/bin/env python3
"""run.py - `make bench` / `make bench-quick`: examples/hello.c (MW_THREADS=1) against
nginx (one worker), Flask (gunicorn -w 1) and FastAPI (uvicorn, one worker), every server
pinned to the same core and loaded by `wrk -t1` pinned to the other one.

    python3 bench/run.py               full run: every row, 8 s each, memory test
    python3 bench/run.py --quick       microweb and nginx, 2 s rows, no memory test
    python3 bench/run.py --duration N  N seconds per row (either variant)
    python3 bench/run.py --rounds N    N rounds of microweb and nginx (full: 3, quick: 1)

Writes bench/results/latest.{md,json} and sweep.svg (quick: quick.{md,json}, quick-sweep.svg).
Stdlib only; Linux only (/proc, taskset). Installs wrk, gnuplot and the peers from Debian
when they are missing and it runs as root; a peer it cannot install or start is reported
as skipped, with the reason. Servers and temporary files are removed on any exit.
"""
import argparse
import contextlib
import dataclasses
import datetime
import json
import os
import platform
import re
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
RESULTS_DIR = BENCH_DIR / "results"
BUILD_DIR = ROOT / "build" / "bench"
SYS_PYTHON = "/usr/bin/python3"  # the Python that Debian's Flask, gunicorn and uvicorn use
NOFILE = 65536                   # descriptor limit asked for this process and every child
BACKLOG = 4096                   # listen backlog given to every peer (microweb uses SOMAXCONN)
WRK_TIMEOUT = "10s"              # wrk's per-request timeout, the same for every server
ECHO_BYTES = 4096
IDLE_CONNECTIONS = 10_000
# every load comes from 127.0.0.1: microweb's cap of 1,000 connections per client address
# would answer 429 from the 1,001st connection on (the 4096 row, the idle row)
PER_ADDRESS_CAP_OFF = "-DMW_MAX_CONNECTIONS_PER_IP=0"
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """A row, a server start or a tool that failed; the message says why."""


# ---------------------------------------------------------------- what is measured

@dataclasses.dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    path: str
    lua_args: tuple = ()


SCENARIOS = {s.key: s for s in (
    Scenario("plaintext", "plaintext GET /", "/"),
    Scenario("json", "JSON GET /users/42", "/users/42"),
    Scenario("echo", f"POST /echo, {ECHO_BYTES // 1024} KiB body", "/echo", (f"post={ECHO_BYTES}",)),
    Scenario("close", "plaintext GET /, Connection: close", "/", ("close",)),
)}


@dataclasses.dataclass(frozen=True)
class Plan:
    name: str              # "full" or "quick"
    duration: int          # seconds per row
    servers: tuple         # peer keys, microweb first
    main: tuple            # (scenario key, connections) of the main tables
    cases: tuple           # main + the sweep points not in main, in run order
    sweep: tuple           # connection counts of the plaintext sweep (a subset of cases)
    rounds: int            # times microweb and nginx run every case (the Python peers: once)
    memory: bool           # run the 10,000 idle connections test
    warmup: int            # seconds of plaintext load before a server's first row
    settle: float          # seconds of rest between rows
    stem: str              # results file names: <stem>.md, <stem>.json
    chart: str             # results chart file name


def make_plan(quick, duration, rounds):
    if quick:
        main = [("plaintext", 64), ("json", 64), ("close", 32)]
        sweep = (1, 64, 4096)
        plan = dict(name="quick", duration=2, servers=("microweb", "nginx"), rounds=1, memory=False,
                    warmup=1, settle=0.3, stem="quick", chart="quick-sweep.svg")
    else:
        main = [(s, c) for s in ("plaintext", "json", "echo") for c in (64, 256)] + [("close", 32)]
        sweep = (1, 16, 64, 256, 1024, 4096)
        plan = dict(name="full", duration=8, servers=("microweb", "nginx", "flask", "fastapi"),
                    rounds=3, memory=True, warmup=2, settle=1.0, stem="latest", chart="sweep.svg")
    # a sweep point already measured by a plaintext row is that row (same settings)
    cases = main + [("plaintext", c) for c in sweep if ("plaintext", c) not in main]
    if duration:
        plan["duration"] = duration
    if rounds:
        plan["rounds"] = rounds
    return Plan(main=tuple(main), cases=tuple(cases), sweep=sweep, **plan)


def case_key(scenario, conns):
    return f"{scenario}@{conns}"


# ---------------------------------------------------------------- processes and /proc

def raise_nofile():
    """Raises this process's descriptor limit to NOFILE (the hard limit too, when allowed).
    Also the preexec of every child, so wrk and the servers can hold 10,000+ sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < NOFILE:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))
            return
        except (ValueError, OSError):
            soft = hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(NOFILE, hard)), hard))


def pick_cores():
    """(server core, client core, note): 1 and 0 on a machine with two or more."""
    if (os.cpu_count() or 1) >= 2:
        return 1, 0, "servers on core 1 (`taskset -c 1`), wrk and this runner on core 0"
    return 0, 0, "ONE core only: servers and wrk share core 0, so the figures understate everything"


SERVER_CORE, CLIENT_CORE, CORE_NOTE = pick_cores()


def proc_stat(pid):
    """Fields of /proc/PID/stat after the command name, or None if the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text[text.rindex(")") + 2:].split()


def user_system_ticks(pids):
    """(utime + cutime, stime + cstime) summed over pids, in clock ticks."""
    user = system = 0
    for pid in pids:
        fields = proc_stat(pid)
        if fields:
            user += int(fields[11]) + int(fields[13])
            system += int(fields[12]) + int(fields[14])
    return user, system


class DrivenClient:
    """A load generator (bench/sse_client.c, bench/ws_client.c) on the client core: it
    answers its start, and each command sent on stdin, with one JSON line on stdout."""

    def __init__(self, argv, log_path, ready_timeout):
        self.argv = ["taskset", "-c", str(CLIENT_CORE)] + [str(a) for a in argv]
        self.log_path = log_path
        self.ready_timeout = ready_timeout

    def __enter__(self):
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                         text=True, preexec_fn=raise_nofile)
        try:
            self.ready = self._answer(self.ready_timeout)
        except BaseException:
            self.proc.kill()
            self.proc.wait()
            raise
        return self

    def __exit__(self, *exc):
        with contextlib.suppress(OSError):
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def _answer(self, timeout):
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            name = Path(self.argv[3]).name
            raise BenchError(f"{name} gave no answer in {timeout:.0f} s: {log_tail(self.log_path)}")
        return json.loads(line)

    def command(self, text, timeout):
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()
        return self._answer(timeout)


def all_stats():
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = proc_stat(int(entry))
            if fields:
                stats[int(entry)] = fields
    return stats


def process_tree(root):
    """root and its descendants (gunicorn master + worker, nginx master + worker)."""
    stats = all_stats()
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            tree.append(pid)
            todo += [p for p, f in stats.items() if int(f[1]) == pid]
    return tree


def process_group(pgid):
    return [pid for pid, f in all_stats().items() if int(f[2]) == pgid]


def cpu_ticks(pids):
    """utime + stime (+ the same of reaped children) summed over pids, in clock ticks."""
    total = 0
    for pid in pids:
        fields = proc_stat(pid)
        if fields:
            total += sum(int(fields[i]) for i in (11, 12, 13, 14))
    return total


def status_kb(pids, field):
    """A /proc/PID/status field in kB (VmRSS, VmHWM) summed over pids."""
    total = 0
    for pid in pids:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith(field + ":"):
                    total += int(line.split()[1])
    return total


def reset_peak_rss(pids):
    """Sets VmHWM back to the current RSS (Linux >= 4.0), so each row gets its own peak."""
    for pid in pids:
        with contextlib.suppress(OSError):
            Path(f"/proc/{pid}/clear_refs").write_text("5")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_response(sock):
    """Reads one HTTP/1.1 response with a Content-Length; returns its status code."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise BenchError("connection closed before a full response")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    match = re.search(rb"\r\ncontent-length:\s*(\d+)", head, re.IGNORECASE)
    need = int(match.group(1)) if match else 0
    while len(body) < need:
        chunk = sock.recv(65536)
        if not chunk:
            raise BenchError("connection closed inside a response body")
        body += chunk
    return int(head.split(b" ", 2)[1])


def get_status(port, path="/", keep_alive=False, sock=None):
    """Sends GET path (on sock, or on a new connection) and returns the status code."""
    own = sock is None
    if own:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        conn = "" if keep_alive else "Connection: close\r\n"
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{conn}\r\n".encode())
        return read_response(sock)
    finally:
        if own:
            sock.close()


def log_tail(path, lines=6):
    with contextlib.suppress(OSError):
        return " | ".join(Path(path).read_text(errors="replace").strip().splitlines()[-lines:])
    return ""


def wait_ready(proc, port, log_path, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"exited with status {proc.returncode} at start: {log_tail(log_path)}")
        with contextlib.suppress(OSError, BenchError, ValueError, IndexError):
            if get_status(port) == 200:
                return
        time.sleep(0.05)
    raise BenchError(f"not answering GET / after {timeout:.0f} s: {log_tail(log_path)}")


def stop(proc):
    """SIGTERM to the server's process group (it runs in its own session), SIGKILL after
    10 s; then SIGKILL by pid to whatever of that group is still there."""
    pgid = proc.pid
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            proc.wait()
    for pid in process_group(pgid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def running(argv, env, port, log_path):
    """Starts a server, waits until GET / answers 200, yields the Popen, stops it on exit."""
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=raise_nofile)
    try:
        wait_ready(proc, port, log_path)
        yield proc
    finally:
        stop(proc)


def command_output(argv, **kw):
    """stdout+stderr of a short command, stripped; "" when it cannot run."""
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60, **kw)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (out.stdout + out.stderr).strip()


# ---------------------------------------------------------------- installing

_apt_updated = False


def apt_install(packages):
    """Installs Debian packages non-interactively; returns None, or why it could not."""
    global _apt_updated
    if os.geteuid() != 0:
        return f"not root, cannot apt-get install {' '.join(packages)}"
    if not shutil.which("apt-get"):
        return "no apt-get on this machine"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    apt = ["apt-get", "-o", "DPkg::Lock::Timeout=900"]
    print(f"bench: installing {' '.join(packages)} from Debian", file=sys.stderr)
    if not _apt_updated:
        subprocess.run(apt + ["update", "-qq"], env=env, capture_output=True)
        _apt_updated = True
    out = subprocess.run(apt + ["install", "-y", "-qq", "--no-install-recommends", *packages],
                         env=env, capture_output=True, text=True)
    if out.returncode != 0:
        return f"apt-get install {' '.join(packages)} failed: {(out.stderr or out.stdout).strip()[-300:]}"
    return None


def ensure(probe, packages):
    """None when probe() finds the tool (installing packages first if needed), else why not."""
    reason = probe()
    if reason is None or not packages:
        return reason
    failed = apt_install(packages)
    return probe() if failed is None else f"{reason}; {failed}"


def which_probe(name, *extra_dirs):
    def probe():
        if shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), *extra_dirs])):
            return None
        return f"{name} not found"
    return probe


def python_probe(*modules, files=()):
    def probe():
        missing = [f for f in (SYS_PYTHON, *files) if not os.access(f, os.X_OK)]
        if missing:
            return f"{', '.join(missing)} not found"
        out = subprocess.run([SYS_PYTHON, "-c", f"import {', '.join(modules)}"],
                             capture_output=True, text=True)
        return None if out.returncode == 0 else f"{SYS_PYTHON} cannot import {', '.join(modules)}"
    return probe


def python_versions(*dists):
    code = ("import importlib.metadata as m\n"
            f"for d in {list(dists)!r}:\n"
            "    try: print(d, m.version(d))\n"
            "    except Exception: print(d, '?')")
    return ", ".join(command_output([SYS_PYTHON, "-c", code]).splitlines())


def nginx_binary():
    return shutil.which("nginx", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"]))


# ---------------------------------------------------------------- the servers

def peer_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(PYTHONDONTWRITEBYTECODE="1", **extra)
    return env


def pinned(*argv):
    return ["taskset", "-c", str(SERVER_CORE), *map(str, argv)]


def write_results(stem, text, data):
    """A report as bench/results/STEM.md and its figures as STEM.json."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / f"{stem}.md").write_text(text)
    (RESULTS_DIR / f"{stem}.json").write_text(json.dumps(data, indent=1) + "\n")


def build(source, name, *flags):
    """cc -O2 -pthread -I. FLAGS SOURCE -o build/bench/NAME (CC from the environment, cc by default)."""
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    out = BUILD_DIR / name
    argv = [os.environ.get("CC", "cc"), "-O2", "-pthread", "-I.", *flags, source, "-o", str(out.relative_to(ROOT))]
    print("bench: " + " ".join(argv), file=sys.stderr)
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise BenchError(f"build of {source} failed: {done.stderr.strip()[-500:]}")
    return out


def microweb_command(binary):
    def command(port, workdir):
        return pinned(binary), peer_env(PORT=str(port), MW_THREADS="1")
    return command


NGINX_CONF = """\
# bench/run.py: one worker, return-only locations, no access log
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile {nofile};
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{
    worker_connections 20000;
}}
http {{
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port} backlog={backlog} deferred;
        location = / {{
            default_type text/plain;
            return 200 "Hello, World!";
        }}
        location /users/ {{
            default_type application/json;
            return 200 '{{"id":"42"}}';
        }}
{locations}    }}
}}
"""


def nginx_command(port, workdir, locations=""):
    """locations: more location blocks for the server (bench/streams.py adds a file)."""
    conf_dir = Path(tempfile.mkdtemp(prefix="nginx-", dir=workdir))
    conf = conf_dir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(nofile=NOFILE, dir=conf_dir, port=port, backlog=BACKLOG, locations=locations))
    return pinned(nginx_binary(), "-p", conf_dir, "-c", conf, "-e", conf_dir / "error.log"), peer_env()


def flask_command(port, workdir):
    return pinned("/usr/bin/gunicorn", "-w", "1", "-k", "sync", "-b", f"127.0.0.1:{port}",
                  "--backlog", BACKLOG, "--chdir", BENCH_DIR, "--log-level", "warning",
                  "flask_app:app"), peer_env()


def fastapi_command(port, workdir):
    return pinned(SYS_PYTHON, "-m", "uvicorn", "--app-dir", BENCH_DIR, "--host", "127.0.0.1",
                  "--port", port, "--backlog", BACKLOG, "--no-access-log", "--log-level", "warning",
                  "fastapi_app:app"), peer_env()


def microweb_version():
    header = (ROOT / "microweb.h").read_text()
    match = re.search(r'#define MW_VERSION "([^"]+)"', header)
    cc = command_output([os.environ.get("CC", "cc"), "--version"]).splitlines()
    git = ["git", "-C", str(ROOT)]
    commit = command_output(git + ["log", "-1", "--format=%h", "--", "microweb.h"])
    dirty = command_output(git + ["status", "--porcelain", "--", "microweb.h"])
    source = f" (microweb.h of commit {commit}{', with uncommitted changes' if dirty else ''})" if commit else ""
    return f"microweb {match.group(1) if match else '?'}{source}, built with {cc[0] if cc else '?'} -O2"


def uvicorn_version():
    probe = ("import importlib.util as u\n"
             "print('loop', 'uvloop' if u.find_spec('uvloop') else 'asyncio',"
             " '/ http', 'httptools' if u.find_spec('httptools') else 'h11')")
    return f"{python_versions('fastapi', 'starlette', 'uvicorn', 'h11')} ({command_output([SYS_PYTHON, '-c', probe])})"


@dataclasses.dataclass(frozen=True)
class Peer:
    key: str
    label: str
    probe: object          # () -> None when usable, else the reason
    packages: tuple        # Debian packages that provide it
    command: object        # (port, workdir) -> (argv, env)
    version: object        # () -> str
    note: str
    cannot: tuple = ()     # ((scenario key, reason), ...)


def make_peers(hello, idle_app):
    """The servers, microweb first; hello and idle_app are built binaries (or None)."""
    return {p.key: p for p in (
        Peer("microweb", "microweb", lambda: None if hello else "not built", (),
             microweb_command(hello), microweb_version,
             "examples/hello.c, `MW_THREADS=1` (one worker thread, plus the idle control thread), built "
             f"with `{PER_ADDRESS_CAP_OFF}` (every wrk connection comes from 127.0.0.1, and the cap of "
             "1,000 connections per client address would refuse the rows with more)"),
        Peer("nginx", "nginx", which_probe("nginx", "/usr/sbin", "/sbin"), ("nginx-light",),
             nginx_command, lambda: command_output([nginx_binary(), "-v"]).replace("nginx version: ", ""),
             "one worker (`worker_processes 1`), `return 200` locations, access_log off, "
             f"keepalive_requests 1000000, keepalive_timeout 120s, listen backlog {BACKLOG} and "
             "`deferred` (TCP_DEFER_ACCEPT, which microweb sets by default)",
             (("echo", "nginx cannot echo a request body"),)),
        Peer("flask", "Flask", python_probe("flask", files=("/usr/bin/gunicorn",)),
             ("python3-flask", "gunicorn"), flask_command,
             lambda: f"{python_versions('flask', 'werkzeug', 'gunicorn')}, {command_output([SYS_PYTHON, '-V'])}",
             f"gunicorn `-w 1` (one sync worker, gunicorn's default), backlog {BACKLOG}; the sync "
             "worker closes the connection after every response, so keep-alive rows reconnect"),
        Peer("fastapi", "FastAPI", python_probe("fastapi", "uvicorn"), ("python3-fastapi", "uvicorn"),
             fastapi_command, uvicorn_version,
             f"uvicorn, one worker, `--no-access-log`, backlog {BACKLOG}, Debian's uvicorn as installed"),
    )}


def idle_command(key, idle_app):
    """The server run for the idle-connection memory row: idle_app for microweb, the same
    nginx as the throughput rows; None for the peers that row does not cover."""
    if key == "microweb":
        return microweb_command(idle_app) if idle_app else None
    return nginx_command if key == "nginx" else None


# ---------------------------------------------------------------- load

def run_wrk(port, scenario, conns, duration):
    """wrk -t1 on the client core; returns the BENCH summary of bench/wrk.lua."""
    argv = ["taskset", "-c", str(CLIENT_CORE), "wrk", "-t1", f"-c{conns}", f"-d{duration}s",
            "--latency", "--timeout", WRK_TIMEOUT, "-s", str(BENCH_DIR / "wrk.lua"),
            f"http://127.0.0.1:{port}{scenario.path}", "--", *scenario.lua_args]
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 120,
                             preexec_fn=raise_nofile)
    except subprocess.TimeoutExpired:
        raise BenchError("wrk did not finish") from None
    for line in out.stdout.splitlines():
        if line.startswith("BENCH "):
            return json.loads(line[6:])
    raise BenchError(f"wrk gave no summary (status {out.returncode}): {(out.stderr or out.stdout).strip()[-300:]}")


def client_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(proc, port, scenario, conns, duration):
    """One row: wrk against a running server, with the server's CPU and peak RSS."""
    pids = process_tree(proc.pid)
    reset_peak_rss(pids)
    ticks, client = cpu_ticks(pids), client_cpu_seconds()
    w = run_wrk(port, scenario, conns, duration)
    client = client_cpu_seconds() - client
    pids = process_tree(proc.pid)
    ticks, peak = cpu_ticks(pids) - ticks, status_kb(pids, "VmHWM")
    if proc.poll() is not None:
        raise BenchError(f"server exited with status {proc.returncode} during the row")
    seconds, requests = w["duration_us"] / 1e6, w["requests"]
    errors = {k: w[k] for k in ("connect", "read", "write", "timeout", "status") if w[k]}
    return {
        "status": "ok", "requests": requests, "seconds": seconds,
        "rps": requests / seconds, "mb_s": w["bytes"] / seconds / 1e6,
        "p50_us": w["p50_us"] if requests else None, "p99_us": w["p99_us"] if requests else None,
        "errors": sum(errors.values()), "error_kinds": errors,
        "cpu_us_per_req": ticks / CLK_TCK * 1e6 / requests if requests else None,
        "server_cpu_pct": 100 * ticks / CLK_TCK / seconds,
        "client_cpu_pct": 100 * client / seconds,
        "peak_rss_kb": peak,
    }


def describe(row):
    if row["status"] != "ok":
        return f"{row['status']}: {row['reason']}"
    cpu = row["cpu_us_per_req"]
    return (f"{row['rps']:,.0f} req/s, p99 {fmt_us(row['p99_us'])}, {row['errors']} errors, "
            f"{'-' if cpu is None else f'{cpu:.2f}'} CPU us/req")


def run_row(peer, proc, port, scenario, conns, plan, round_no):
    key = case_key(scenario, conns)
    cannot = dict(peer.cannot)
    if scenario in cannot:
        return {"status": "n/a", "reason": cannot[scenario]}
    try:
        row = measure(proc, port, SCENARIOS[scenario], conns, plan.duration)
    except BenchError as e:
        row = {"status": "failed", "reason": str(e)}
    rounds = f"round {round_no + 1}/{rounds_of(plan, peer.key)}"
    print(f"bench: {peer.key:9} {key:14} {rounds:11} {describe(row)}", file=sys.stderr)
    time.sleep(plan.settle)
    return row


def rounds_of(plan, key):
    """Rounds a server runs: all of them for microweb and nginx, whose ratio is the close
    one that the machine's noise can tip; one for the Python peers, 15x or more away."""
    return plan.rounds if key in ("microweb", "nginx") else 1


def start_servers(stack, peers, keys, plan, workdir):
    """Starts every server on its own port, all pinned to the server core (an idle server
    costs the others nothing), and warms each up. Returns ({key: (proc, port, log)},
    {key: why it could not start}); the servers stop when stack closes."""
    live, failed = {}, {}
    for key in keys:
        port, log = free_port(), Path(workdir) / f"{key}.log"
        argv, env = peers[key].command(port, workdir)
        try:
            proc = stack.enter_context(running(argv, env, port, log))
            run_wrk(port, SCENARIOS["plaintext"], 64, plan.warmup)
        except BenchError as e:
            failed[key] = str(e)
            print(f"bench: {key}: failed: {e}", file=sys.stderr)
            continue
        live[key] = (proc, port, log)
    return live, failed


def run_rounds(peers, live, plan):
    """Every case against every live server, the servers back to back within a case, so
    that a slow minute on the machine hits all of them alike; microweb and nginx repeat
    the whole plan plan.rounds times, in the opposite order each round.
    Returns {key: {case: [row of each round]}}."""
    keys = list(live)
    rounds = {key: {case_key(s, c): [] for s, c in plan.cases} for key in keys}
    for r in range(plan.rounds):
        for scenario, conns in plan.cases:
            for key in (keys if r % 2 == 0 else keys[::-1]):
                if r >= rounds_of(plan, key):
                    continue
                proc, port, log = live[key]
                if proc.poll() is not None:
                    row = {"status": "failed", "reason": f"server exited with status {proc.returncode}: {log_tail(log)}"}
                else:
                    row = run_row(peers[key], proc, port, scenario, conns, plan, r)
                rounds[key][case_key(scenario, conns)].append(row)
    return rounds


def median_row(rows):
    """The row a case reports: a failure if any round failed (or n/a), else the round with
    the median req/s (the lower middle one for an even count), every column from that run."""
    bad = [r for r in rows if r["status"] != "ok"]
    if bad:
        return bad[0]
    ranked = sorted(rows, key=lambda r: r["rps"])
    return ranked[(len(ranked) - 1) // 2]


def open_idle(port, count):
    """count keep-alive connections, one GET / answered on each; returns (sockets, non-200s)."""
    socks, bad = [], 0
    try:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            socks.append(sock)
            bad += get_status(port, keep_alive=True, sock=sock) != 200
            sock.settimeout(None)  # blocking, so still_open's MSG_DONTWAIT peek does not wait
    except BaseException:
        close_all(socks)
        raise
    return socks, bad


def still_open(socks):
    alive = 0
    for sock in socks:
        try:
            alive += sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
    return alive


def close_all(socks):
    for sock in socks:
        sock.close()


def idle_memory(key, command, workdir):
    """RSS of the server tree with IDLE_CONNECTIONS idle keep-alive connections, minus before."""
    port = free_port()
    argv, env = command(port, workdir)
    try:
        with running(argv, env, port, Path(workdir) / f"{key}-idle.log") as proc:
            time.sleep(0.5)
            before = status_kb(process_tree(proc.pid), "VmRSS")
            socks, bad = open_idle(port, IDLE_CONNECTIONS)
            try:
                time.sleep(1.0)
                after = status_kb(process_tree(proc.pid), "VmRSS")
                alive = still_open(socks)
            finally:
                close_all(socks)
    except (BenchError, OSError) as e:
        print(f"bench: {key} idle: failed: {e}", file=sys.stderr)
        return {"status": "failed", "reason": str(e)}
    row = {"status": "ok", "before_kb": before, "after_kb": after, "non_200": bad, "open": alive,
           "bytes_per_conn": (after - before) * 1024 / IDLE_CONNECTIONS}
    print(f"bench: {key:9} idle x{IDLE_CONNECTIONS}: {row['bytes_per_conn']:.0f} B/connection, "
          f"{alive} still open", file=sys.stderr)
    return row


# ---------------------------------------------------------------- the run

def machine_info():
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    mem = re.search(r"^MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text(), re.MULTILINE)
    return {
        "nproc": os.cpu_count(),
        "cpu": model.group(1).strip() if model else platform.processor() or "?",
        "kernel": f"{platform.system()} {platform.release()}",
        "memory": f"{int(mem.group(1)) / 1024 / 1024:.1f} GiB" if mem else "?",
        "os": command_output(["sh", "-c", ". /etc/os-release && echo \"$PRETTY_NAME\""]),
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
        "cores": CORE_NOTE,
    }


def prepare(plan):
    """Tools, builds and peers; returns (peers, {peer: why skipped}, why no chart or None,
    the idle_app binary or None)."""
    missing = ensure(which_probe("wrk"), ("wrk",))
    if missing:
        raise BenchError(f"wrk is needed: {missing}")
    cc = os.environ.get("CC", "cc")
    if ensure(which_probe(cc), ("gcc",)):
        raise BenchError(f"{cc} is needed to build examples/hello.c")
    hello = build("examples/hello.c", "hello", PER_ADDRESS_CAP_OFF)
    idle_app = build("bench/idle_app.c", "idle_app", PER_ADDRESS_CAP_OFF) if plan.memory else None
    peers = make_peers(hello, idle_app)
    skipped = {}
    for key in plan.servers:
        reason = ensure(peers[key].probe, peers[key].packages)
        if reason:
            skipped[key] = f"not installed: {reason}"
            print(f"bench: {key} skipped: {reason}", file=sys.stderr)
    chart = ensure(which_probe("gnuplot"), ("gnuplot-nox",))
    return peers, skipped, chart, idle_app


def run(plan):
    started = time.monotonic()
    peers, skipped, chart_missing, idle_app = prepare(plan)
    results = {
        "plan": dataclasses.asdict(plan), "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine_info(), "wrk": re.sub(r"\s*Copyright.*", "", command_output(["wrk", "-v"]).splitlines()[0]),
        "peers": {}, "rows": {}, "rounds": {}, "idle": {},
    }
    with tempfile.TemporaryDirectory(prefix="microweb-bench-") as workdir:
        for key in plan.servers:
            results["peers"][key] = {"label": peers[key].label, "note": peers[key].note,
                                     "version": peers[key].version() if key not in skipped else "",
                                     "skipped": skipped.get(key)}
        with contextlib.ExitStack() as stack:
            live, failed = start_servers(stack, peers, [k for k in plan.servers if k not in skipped], plan, workdir)
            for key, reason in failed.items():
                results["peers"][key]["skipped"] = reason
            results["rounds"] = run_rounds(peers, live, plan)
        for key, cases in results["rounds"].items():
            results["rows"][key] = {case: median_row(rows) for case, rows in cases.items()}
            if all(r["status"] == "failed" for r in results["rows"][key].values()):
                results["peers"][key]["skipped"] = next(iter(results["rows"][key].values()))["reason"]
        if plan.memory:
            for key in ("microweb", "nginx"):
                command = idle_command(key, idle_app)
                if key not in skipped and command:
                    results["idle"][key] = idle_memory(key, command, workdir)
    results["elapsed_s"] = round(time.monotonic() - started)
    return results, chart_missing


def write_outputs(results, plan, chart_missing):
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    chart_path = RESULTS_DIR / plan.chart
    chart_note = f"Chart not drawn: {chart_missing}." if chart_missing else write_chart(results, plan, chart_path)
    (RESULTS_DIR / f"{plan.stem}.json").write_text(json.dumps(results, indent=1) + "\n")
    report = RESULTS_DIR / f"{plan.stem}.md"
    report.write_text(render_report(results, plan, chart_note))
    return report


# ---------------------------------------------------------------- figures

def row_of(results, server, scenario, conns):
    row = results["rows"].get(server, {}).get(case_key(scenario, conns))
    return row if row and row["status"] == "ok" else None


def ratio(results, scenario, conns, peer, metric):
    """microweb's metric / peer's on one row; inf when the peer's is 0 (no request served);
    None when either row is missing or microweb's figure is 0 or unknown."""
    mine, theirs = row_of(results, "microweb", scenario, conns), row_of(results, peer, scenario, conns)
    if not mine or not theirs or not mine[metric] or theirs[metric] is None:
        return None
    return mine[metric] / theirs[metric] if theirs[metric] else float("inf")


def fmt_us(us):
    if us is None:
        return "-"
    if us < 1000:
        return f"{us:.0f} µs"
    return f"{us / 1000:.2f} ms" if us < 1_000_000 else f"{us / 1e6:.2f} s"


def fmt_ratio(x):
    if x is None:
        return "-"
    if x == float("inf"):
        return "∞ (peer served 0)"
    return f"{x:.2f}x" if x < 10 else f"{x:.1f}x"


def fmt_errors(row):
    if not row["errors"]:
        return "0"
    kinds = ", ".join(f"{k} {v:,}" for k, v in row["error_kinds"].items())
    return f"{row['errors']:,} ({kinds})"


def table(headers, rows):
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


ROW_HEADERS = ["server", "req/s", "MB/s in", "p50", "p99", "errors", "CPU µs/req",
               "server CPU", "wrk CPU", "peak RSS"]


def row_cells(label, row):
    if row is None:
        return [label, "not run"] + [""] * (len(ROW_HEADERS) - 2)
    if row["status"] != "ok":
        return [label, f"{row['status']}: {row['reason']}"] + [""] * (len(ROW_HEADERS) - 2)
    cpu = row["cpu_us_per_req"]
    return [label, f"{row['rps']:,.0f}", f"{row['mb_s']:.1f}", fmt_us(row["p50_us"]),
            fmt_us(row["p99_us"]), fmt_errors(row), "-" if cpu is None else f"{cpu:.2f}",
            f"{row['server_cpu_pct']:.0f}%", f"{row['client_cpu_pct']:.0f}%",
            f"{row['peak_rss_kb'] / 1024:.1f} MiB"]


def ran(results, plan):
    return [k for k in plan.servers if k in results["rows"]]


def label(results, key):
    return results["peers"][key]["label"]


def case_tables(results, plan):
    out = []
    for scenario, conns in plan.main:
        out.append(f"### {SCENARIOS[scenario].title}, {conns} connections\n")
        rows = [row_cells(label(results, k), results["rows"][k].get(case_key(scenario, conns)))
                for k in ran(results, plan)]
        out.append(table(ROW_HEADERS, rows) + "\n")
    return "\n".join(out)


def sweep_section(results, plan, chart_note):
    servers = ran(results, plan)
    summary = []
    for conns in plan.sweep:
        cells = [f"{conns:,}"]
        for k in servers:
            row = results["rows"][k].get(case_key("plaintext", conns))
            cells.append(f"{row['rps']:,.0f}" if row and row["status"] == "ok" else (row or {}).get("status", "-"))
        summary.append(cells)
    detail = [[f"{conns:,}"] + row_cells(label(results, k), results["rows"][k].get(case_key("plaintext", conns)))
              for k in servers for conns in plan.sweep]
    return "\n".join([
        f"Plaintext `GET /`, keep-alive, requests/s by connection count. {chart_note}\n",
        table(["connections"] + [label(results, k) for k in servers], summary) + "\n",
        "<details><summary>every sweep row</summary>\n",
        table(["connections"] + ROW_HEADERS, detail) + "\n",
        "</details>\n",
    ])


def ratio_section(results, plan):
    out = ["microweb's figure divided by the peer's, from this run. req/s: higher is better "
           "for microweb; CPU/request and p99: lower is better. `-`: no figure for that row "
           "(n/a, skipped or failed).\n"]
    for peer in ("nginx", "flask", "fastapi"):
        if peer not in results["rows"]:
            continue
        rows = [[f"{SCENARIOS[s].title} @ {c}"] +
                [fmt_ratio(ratio(results, s, c, peer, m)) for m in ("rps", "cpu_us_per_req", "p99_us")]
                for s, c in plan.cases]
        out.append(f"### microweb / {label(results, peer)}\n")
        out.append(table(["row", "req/s", "CPU/request", "p99"], rows) + "\n")
    return "\n".join(out)


def rounds_section(results, plan):
    """Each round of microweb and nginx, and their ratio within the round (the two were
    measured back to back)."""
    if plan.rounds < 2 or not all(k in results["rounds"] for k in ("microweb", "nginx")):
        return None

    def figures(key, case, metric, fmt):
        return " / ".join(fmt(r[metric]) if r["status"] == "ok" else r["status"]
                          for r in results["rounds"][key][case])

    def ratios(case, metric):
        pairs = zip(results["rounds"]["microweb"][case], results["rounds"]["nginx"][case])
        return " / ".join(fmt_ratio(m[metric] / n[metric]) if m["status"] == n["status"] == "ok"
                          and m[metric] and n[metric] else "-" for m, n in pairs)

    rows = []
    for scenario, conns in plan.cases:
        case = case_key(scenario, conns)
        if row_of(results, "nginx", scenario, conns) is None:
            continue
        rows.append([f"{SCENARIOS[scenario].title} @ {conns}",
                     figures("microweb", case, "rps", lambda x: f"{x:,.0f}"),
                     figures("nginx", case, "rps", lambda x: f"{x:,.0f}"), ratios(case, "rps"),
                     figures("microweb", case, "cpu_us_per_req", lambda x: f"{x:.2f}"),
                     figures("nginx", case, "cpu_us_per_req", lambda x: f"{x:.2f}"),
                     ratios(case, "cpu_us_per_req")])
    return ("Round by round, in run order. Within a round the two servers ran the case back to "
            "back, so the round's ratio is the paired comparison; the spread across rounds is the "
            "machine's noise.\n\n"
            + table(["row", "microweb req/s", "nginx req/s", "req/s ratio", "microweb CPU µs/req",
                     "nginx CPU µs/req", "CPU/request ratio"], rows) + "\n")


def idle_section(results):
    if not results["idle"]:
        return "Not run in this variant.\n"
    rows = []
    for key, r in results["idle"].items():
        if r["status"] != "ok":
            rows.append([label(results, key), f"failed: {r['reason']}", "", "", "", ""])
            continue
        rows.append([label(results, key), f"{r['before_kb'] / 1024:.1f} MiB", f"{r['after_kb'] / 1024:.1f} MiB",
                     f"{r['bytes_per_conn']:,.0f} B", f"{r['open']:,} / {IDLE_CONNECTIONS:,}", f"{r['non_200']:,}"])
    return (f"{IDLE_CONNECTIONS:,} keep-alive connections opened from this runner, one `GET /` "
            "answered on each, then left idle; RSS (VmRSS, summed over the server's processes) "
            "1 s later minus RSS before the first connection, divided by "
            f"{IDLE_CONNECTIONS:,}. Kernel socket buffers are not in RSS and not counted. microweb "
            "runs `bench/idle_app.c` here (hello's routes, 20,000 connection cap and 120 s keep-alive "
            "timeout, because hello's 10,000 cap and 5 s timeout are not settable from the "
            "environment); nginx runs the same configuration as above (keepalive_timeout 120s).\n\n"
            + table(["server", "RSS before", "RSS with idle connections", "per connection",
                     "still open at the end", "non-200 answers"], rows) + "\n")


def check(text, value, bound, higher_is_better=True, fmt=fmt_ratio):
    """(met: True/False/None, line) for one target."""
    if value is None:
        return None, f"{text}: not measured"
    met = value >= bound if higher_is_better else value <= bound
    return met, f"{text}: {fmt(value)} (target {'≥' if higher_is_better else '≤'} {fmt(bound)})"


def worst_ratio(results, plan, peer):
    """Lowest microweb/peer req/s over every row both served, and the rows under 15x."""
    pairs = [(ratio(results, s, c, peer, "rps"), f"{s} @ {c}") for s, c in plan.cases]
    pairs = [(r, name) for r, name in pairs if r is not None]
    if not pairs:
        return None, []
    return min(pairs)[0], [f"{name} {fmt_ratio(r)}" for r, name in sorted(pairs) if r < 15]


def targets(results, plan):
    """[(met, line)], each target evaluated from this run's figures."""
    out = []
    main = [(s, c) for s in ("plaintext", "json") for c in (64, 256) if (s, c) in plan.cases]
    for s, c in main:
        out.append(check(f"{s} @ {c}: req/s vs nginx", ratio(results, s, c, "nginx", "rps"), 0.97))
        cpu = ratio(results, s, c, "nginx", "cpu_us_per_req")
        met, line = check(f"{s} @ {c}: CPU/request vs nginx", cpu, 1.0, higher_is_better=False)
        aim = "" if cpu is None else ("; the 0.9x aim met" if cpu <= 0.9 else "; the 0.9x aim not met")
        out.append((met, line + aim))
    for c in (64, 256):
        row = row_of(results, "microweb", "echo", c)
        if row:
            vs = ratio(results, "echo", c, "flask", "rps")
            out.append(check(f"POST /echo 4 KiB @ {c}: {row['rps']:,.0f} req/s, "
                             f"{row['rps'] * ECHO_BYTES / 1e6:.1f} MB/s of body each way; req/s vs Flask",
                             vs, 15.0))
    if ("close", 32) in plan.cases:
        out.append(check("Connection: close @ 32: req/s vs nginx", ratio(results, "close", 32, "nginx", "rps"), 1.0))
    for peer in ("flask", "fastapi"):
        if peer in plan.servers:
            low, under = worst_ratio(results, plan, peer)
            met, line = check(f"every row ≥ 15x {label(results, peer)} (lowest row)", low, 15.0)
            out.append((met, line + (f"; under 15x: {', '.join(under)}" if under else "")))
    for s in ("plaintext", "json"):
        if (s, 256) in plan.cases:
            out.append(check(f"{s} @ 256: p99 vs nginx", ratio(results, s, 256, "nginx", "p99_us"), 1.2,
                             higher_is_better=False))
    low, high = (row_of(results, "microweb", "plaintext", c) for c in (64, 4096))
    out.append(check("microweb plaintext req/s at 4096 connections vs at 64",
                     high["rps"] / low["rps"] if low and high else None, 0.8))
    if plan.memory:
        idle = results["idle"].get("microweb", {})
        out.append(check(f"microweb memory per idle connection ({IDLE_CONNECTIONS:,} open)",
                         idle.get("bytes_per_conn") if idle.get("status") == "ok" else None, 1024,
                         higher_is_better=False, fmt=lambda b: f"{b:,.0f} B"))
    return out


def target_section(results, plan):
    found = targets(results, plan)
    marks = {True: "met", False: "**NOT met**", None: "not measured"}
    lines = [f"- {marks[met]} — {line}" for met, line in found]
    tally = [met for met, _ in found]
    head = f"{tally.count(True)} met, {tally.count(False)} not met, {tally.count(None)} not measured.\n\n"
    return head + "\n".join(lines) + "\n"


def settings_section(results, plan):
    p = plan
    peers = [f"- **{v['label']}**: {v['version'] or '-'}. {v['note']}."
             + (f" **Skipped**: {v['skipped']}" if v["skipped"] else "") for v in results["peers"].values()]
    return "\n".join([
        f"- Variant: **{p.name}**, {p.duration} s per row, {p.warmup} s plaintext warm-up at 64 "
        f"connections after each server starts, {p.settle:g} s rest between rows. Every server is "
        "started once at the beginning and they all stay up (idle when not loaded); each case "
        "runs against the servers back to back, so the machine's slow moments fall on all of "
        f"them alike. microweb and nginx run every case {p.rounds} time{'s' if p.rounds > 1 else ''}"
        f"{', in the opposite order each round' if p.rounds > 1 else ''}, the Python peers once; "
        + ("a row of the tables is the round with the median req/s (all its columns from that "
           "run), every round is listed under Rounds." if p.rounds > 1 else "one round."),
        f"- Pinning: {results['machine']['cores']}.",
        f"- Load: `{results['wrk']}`, `wrk -t1 -cN -dDs --latency --timeout {WRK_TIMEOUT} -s bench/wrk.lua URL`;"
        f" HTTP/1.1 keep-alive except the Connection: close row; POST body {ECHO_BYTES} bytes.",
        f"- Descriptor limit {NOFILE} for wrk and every server (setrlimit before exec).",
        "- req/s and MB/s (response bytes received, headers included) from wrk; p50/p99 from "
        "`--latency`; errors = socket errors (connect, read, write, timeout) + responses with "
        "status ≥ 400; CPU µs/req = utime+stime ticks (and reaped children's) of the server's "
        "process tree from /proc/PID/stat, read just before and after wrk, over the requests wrk "
        "completed; server CPU / wrk CPU = the same ticks over the row's wall time (100% = one "
        "core busy); peak RSS = VmHWM summed over the process tree (pages shared between "
        "master and worker count once per process), reset (`/proc/PID/clear_refs` 5) before each row.",
        "",
        *peers,
    ]) + "\n"


def render_report(results, plan, chart_note):
    m = results["machine"]
    skipped = [f"- {v['label']}: {v['skipped']}" for v in results["peers"].values() if v["skipped"]]
    rounds = rounds_section(results, plan)
    client_bound = [f"{k} {key}" for k, rows in results["rows"].items() for key, r in rows.items()
                    if r["status"] == "ok" and r["client_cpu_pct"] >= 95]
    parts = [
        f"# microweb benchmark ({plan.name})\n",
        f"Generated by `bench/run.py{' --quick' if plan.name == 'quick' else ''}` on "
        f"{results['date']} in {results['elapsed_s']} s.\n",
        "## Machine\n",
        f"- {m['nproc']} CPUs: {m['cpu']}; {m['memory']} memory",
        f"- {m['kernel']}, {m['os']}",
        f"- load average at start: {' '.join(m['loadavg_at_start'])}\n",
        "## Settings and versions\n",
        settings_section(results, plan),
        "## Results\n",
        case_tables(results, plan),
        "## Connection sweep\n",
        sweep_section(results, plan, chart_note),
        "## Ratios (microweb / peer)\n",
        ratio_section(results, plan),
        *(["## Rounds (microweb and nginx)\n", rounds] if rounds else []),
        "## Memory per idle connection\n",
        idle_section(results),
        "## Targets\n",
        target_section(results, plan),
    ]
    if client_bound:
        parts.append("## Notes\n\nwrk used ≥ 95% of its core on these rows, so the client may "
                     "have been the limit there: " + ", ".join(client_bound) + ".\n")
    if skipped:
        parts.append("## Skipped\n\n" + "\n".join(skipped) + "\n")
    return "\n".join(parts)


def write_chart(results, plan, path):
    """gnuplot SVG of the sweep (two panels: linear and log requests/s); returns a note."""
    blocks, plots = [], []
    for key in ran(results, plan):
        points = [(c, results["rows"][key].get(case_key("plaintext", c))) for c in plan.sweep]
        points = [(c, r["rps"]) for c, r in points if r and r["status"] == "ok" and r["rps"] > 0]
        if points:
            blocks.append(f"${key} << EOD\n" + "\n".join(f"{c} {rps:.1f}" for c, rps in points) + "\nEOD")
            plots.append(f"${key} using 1:2 with linespoints lw 2 pt 7 title \"{label(results, key)}\"")
    if not plots:
        return "No sweep figures to chart."
    xtics = ", ".join(str(c) for c in plan.sweep)
    script = "\n".join([
        'set terminal svg size 1100,480 dynamic noenhanced font "sans,12" background "white"',
        f'set output "{path}"',
        *blocks,
        'set multiplot layout 1,2 title "Plaintext GET / keep-alive: requests/s vs connections '
        '(servers on one core, wrk -t1 on another)"',
        "set logscale x 2", f"set xrange [{min(plan.sweep) / 1.5}:{max(plan.sweep) * 1.5}]",
        f"set xtics ({xtics})", "set grid", "set key top left",
        'set xlabel "connections (log scale)"', 'set ylabel "requests/s"',
        "set yrange [0:*]", 'set format y "%.0f"',
        'set title "linear requests/s"', "plot " + ", ".join(plots),
        "set logscale y", "set yrange [*:*]", 'set title "log requests/s"', "plot " + ", ".join(plots),
        "unset multiplot",
    ])
    done = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    if done.returncode != 0:
        return f"Chart not drawn: gnuplot failed: {done.stderr.strip()[-300:]}"
    return f"Chart: [`{path.name}`]({path.name}) (x: connections, log scale; y: requests/s)."


# ---------------------------------------------------------------- main

def focused_plan(full_rounds, full_duration=4):
    """The command line every focused bench (middleware, validate, templates) takes:
    --duration seconds per row, --rounds, --quick (2 s rows, 2 rounds)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=0)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    return {"quick": args.quick, "duration": args.duration or (2 if args.quick else full_duration),
            "rounds": args.rounds or (2 if args.quick else full_rounds)}


def run_main(bench_main):
    """Exits with a bench's status; a tool or package it cannot get is one line, not a traceback."""
    try:
        sys.exit(bench_main())
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        sys.exit(1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="microweb and nginx only, short rows, no memory test")
    parser.add_argument("--duration", type=int, help="seconds per row (default: 8, quick: 2)")
    parser.add_argument("--rounds", type=int, help="rounds of microweb and nginx (default: 3, quick: 1)")
    args = parser.parse_args()
    if args.duration is not None and args.duration < 1:
        parser.error("--duration must be at least 1 second")
    if args.rounds is not None and args.rounds < 1:
        parser.error("--rounds must be at least 1")
    plan = make_plan(args.quick, args.duration, args.rounds)
    for sig in (signal.SIGTERM, signal.SIGHUP):  # unwind (stop servers, remove temp dirs)
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))
    raise_nofile()
    os.sched_setaffinity(0, {CLIENT_CORE})  # this runner (and the idle client) stay off the server core
    try:
        results, chart_missing = run(plan)
    except BenchError as e:
        sys.exit(f"bench: {e}")
    except KeyboardInterrupt:
        print("bench: interrupted; servers stopped, temporary files removed", file=sys.stderr)
        sys.exit(130)
    report = write_outputs(results, plan, chart_missing)
    print(f"bench: wrote {report.relative_to(ROOT)} in {results['elapsed_s']} s", file=sys.stderr)


if __name__ == "__main__":
    main()
