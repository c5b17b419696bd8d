#!/usr/bin/env python3
"""proxy.py - what the proxy hop costs: examples/hello.c answered directly, against three
instances of it behind nginx as README.md's deployment section configures it (keep-alive
upstream), over plain HTTP and with TLS terminated at nginx.

    direct       wrk -> one hello (MW_THREADS=1)
    nginx        wrk -> nginx (one worker) -> three hellos (MW_THREADS=1 each), keep-alive
    nginx+tls    the same with wrk speaking TLS to nginx (keep-alive: no handshake per request)

Every server process (nginx and the instances) is pinned to one core, wrk -t1 -c64 to the
other; the rows alternate round by round. Per request: the CPU of every server process
together (and nginx's share), p50 and p99, as ratios to direct.

    python3 bench/proxy.py [--duration N] [--rounds N] [--quick]

Writes bench/results/proxy.{md,json} (--quick: proxy-quick.*). Linux only; installs wrk
and nginx from Debian when they are missing and it runs as root.
"""
import datetime
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402

ROWS = ("direct", "nginx", "nginx+tls")

NGINX_CONF = """\
# bench/proxy.py: one worker, the README's proxy settings, no access log
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    upstream hello {{
{servers}        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port};
        listen 127.0.0.1:{tls_port} ssl;
        ssl_certificate {dir}/cert.pem;
        ssl_certificate_key {dir}/key.pem;
        location / {{
            proxy_pass http://hello;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;
        }}
    }}
}}
"""


def start_hello(binary, workdir, name):
    port = bench.free_port()
    log = Path(workdir) / f"{name}.log"
    env = bench.peer_env(PORT=str(port), MW_THREADS="1", MW_TRUSTED_PROXIES="127.0.0.1")
    proc = subprocess.Popen(bench.pinned(binary), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=open(log, "w"), start_new_session=True, preexec_fn=bench.raise_nofile)
    bench.wait_ready(proc, port, log)
    return proc, port


def start_nginx(workdir, upstream_ports):
    conf_dir = Path(tempfile.mkdtemp(prefix="nginx-", dir=workdir))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-days", "2", "-subj", "/CN=localhost", "-keyout", str(conf_dir / "key.pem"), "-out",
                    str(conf_dir / "cert.pem")], check=True, capture_output=True)
    port, tls_port = bench.free_port(), bench.free_port()
    servers = "".join(f"        server 127.0.0.1:{p};\n" for p in upstream_ports)
    (conf_dir / "nginx.conf").write_text(NGINX_CONF.format(dir=conf_dir, port=port, tls_port=tls_port,
                                                             servers=servers))
    log = conf_dir / "error.log"
    proc = subprocess.Popen(bench.pinned(bench.nginx_binary(), "-p", conf_dir, "-c", conf_dir / "nginx.conf", "-e", log),
                            env=bench.peer_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True, preexec_fn=bench.raise_nofile)
    bench.wait_ready(proc, port, log)
    return proc, port, tls_port


def wrk(url, duration):
    argv = ["taskset", "-c", str(bench.CLIENT_CORE), "wrk", "-t1", "-c64", f"-d{duration}s", "--latency", "--timeout",
            bench.WRK_TIMEOUT, "-s", str(bench.BENCH_DIR / "wrk.lua"), url]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60, preexec_fn=bench.raise_nofile)
    summary = next((json.loads(line[6:]) for line in out.stdout.splitlines() if line.startswith("BENCH ")), None)
    if not summary or not summary["requests"]:
        raise bench.BenchError(f"wrk gave no summary for {url}: {(out.stderr or out.stdout)[-300:]}")
    return summary


def measure(url, server_pids, nginx_pids, duration):
    """One row: wrk against url, with the CPU of the server processes per request."""
    total, proxy = bench.cpu_ticks(server_pids), bench.cpu_ticks(nginx_pids)
    w = wrk(url, duration)
    total, proxy = bench.cpu_ticks(server_pids) - total, bench.cpu_ticks(nginx_pids) - proxy
    errors = sum(w[k] for k in ("connect", "read", "write", "timeout", "status"))
    per_request = 1e6 / bench.CLK_TCK / w["requests"]
    return {"rps": w["requests"] / (w["duration_us"] / 1e6), "cpu_us": total * per_request,
            "nginx_cpu_us": proxy * per_request, "p50_us": w["p50_us"], "p99_us": w["p99_us"], "errors": errors}


def run_rows(hello, plan, workdir):
    direct = start_hello(hello, workdir, "direct")
    behind = [start_hello(hello, workdir, f"instance{n}") for n in range(3)]
    nginx, port, tls_port = start_nginx(workdir, [p for _, p in behind])
    procs = [direct[0], nginx] + [p for p, _ in behind]
    try:
        nginx_pids = bench.process_tree(nginx.pid)
        proxied_pids = nginx_pids + sum((bench.process_tree(p.pid) for p, _ in behind), [])
        targets = {"direct": (f"http://127.0.0.1:{direct[1]}/", bench.process_tree(direct[0].pid), []),
                   "nginx": (f"http://127.0.0.1:{port}/", proxied_pids, nginx_pids),
                   "nginx+tls": (f"https://127.0.0.1:{tls_port}/", proxied_pids, nginx_pids)}
        for url, _, _ in targets.values():  # warm-up (TLS: every connection's handshake happens here)
            wrk(url, 2)
        rows = {r: [] for r in ROWS}
        for n in range(plan["rounds"]):
            for r in (ROWS if n % 2 == 0 else tuple(reversed(ROWS))):
                rows[r].append(measure(*targets[r], plan["duration"]))
                time.sleep(0.3)  # rest between rows: the kernel's backlog of closed sockets drains
    finally:
        for p in procs:
            bench.stop(p)
    return rows


def report(rows, plan):
    best = {r: min(rows[r], key=lambda x: x["cpu_us"]) for r in ROWS}  # noise only adds CPU
    p99 = {r: statistics.median(x["p99_us"] for x in rows[r]) for r in ROWS}
    p50 = {r: statistics.median(x["p50_us"] for x in rows[r]) for r in ROWS}
    rps = {r: statistics.median(x["rps"] for x in rows[r]) for r in ROWS}
    errors = {r: sum(x["errors"] for x in rows[r]) for r in ROWS}
    base = best["direct"]["cpu_us"]
    lines = [
        "# The proxy hop: one instance direct against three behind nginx",
        "",
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, `python3 bench/proxy.py"
        f"{' --quick' if plan['quick'] else ''}`: {plan['rounds']} rounds of {plan['duration']} s per row, "
        f"alternating; wrk -t1 -c64 GET / (examples/hello.c, MW_THREADS=1 per instance); {bench.CORE_NOTE}; "
        "nginx with one worker, on the servers' core.",
        "",
        "| row | server CPU per request (best round) | ratio to direct | of which nginx | p50 | p99 | ratio p99 "
        "| req/s | errors |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in ROWS:
        b = best[r]
        lines.append(f"| {r} | {b['cpu_us']:.2f} µs | {b['cpu_us'] / base:.2f}x | {b['nginx_cpu_us']:.2f} µs | "
                     f"{p50[r]:.0f} µs | {p99[r]:.0f} µs | {p99[r] / p99['direct']:.2f}x | {rps[r]:,.0f} | "
                     f"{errors[r]} |")
    lines += [
        "",
        "Server CPU is every server process of the row together (nginx and the three instances behind it), per "
        "request, in the row's least disturbed round; all of them share one core, so req/s is what one core "
        "gives. The hop's cost is the difference to direct: nginx parses the request, picks an instance, writes "
        "the request to it over a kept-alive connection, reads the answer and writes it to the client, and the "
        "instance parses the forwarding headers nginx adds. Latencies are the median round's.",
    ]
    return "\n".join(lines) + "\n", {"best": best, "p50_us": p50, "p99_us": p99, "rps": rps, "errors": errors,
                                     "rounds": rows}


def main():
    plan = bench.focused_plan(5)
    bench.raise_nofile()
    for tool, package in (("wrk", "wrk"), ("nginx", "nginx"), ("openssl", "openssl")):
        missing = bench.ensure(bench.which_probe(tool, "/usr/sbin"), [package])
        if missing:
            raise bench.BenchError(missing)
    hello = bench.build("examples/hello.c", "hello_proxy", bench.PER_ADDRESS_CAP_OFF)
    with tempfile.TemporaryDirectory() as workdir:
        rows = run_rows(hello, plan, workdir)
    text, data = report(rows, plan)
    bench.write_results("proxy-quick" if plan["quick"] else "proxy", text, data)
    print(text)
    return 0


if __name__ == "__main__":
    bench.run_main(main)
