#!/usr/bin/env python3
"""The README's deployment, for real on loopback.

Usage:  python3 tests/readme_deployment.py TODO_PG_BINARY SITE_BINARY

- Three instances of examples/todo_pg.c on one throwaway PostgreSQL (tests/pg_db.sh),
  behind Debian's nginx and then behind Debian's HAProxy, each configured with the
  file README.md's deployment section shows (the ports, the certificate's file names
  and the paths a non-installed server needs are replaced, and the timers are shorter:
  HAProxy checks every 200 ms, nginx retries a failed instance after 1 s), TLS
  terminated at the proxy with a certificate made for the test. Under a steady load of
  GET requests over keep-alive TLS connections: one instance is killed with SIGKILL and
  started again (the balancer brings it back), then all three are restarted one by one
  with SIGTERM; the clients see no error and nothing but 200, and HAProxy, whose
  instances drain (MW_DRAIN_DELAY_MS), had to retry or redispatch no request then.
- A login through nginx to one of three instances of examples/site.c: the CSRF check
  passes because the instance believes the proxy's https and host (MW_TRUSTED_PROXIES),
  and the session is valid on every instance.
- The systemd units, checked by systemd-analyze and run with socket activation by
  systemd-socket-activate (what systemd does: the listening socket as fd 3, LISTEN_FDS).

A missing nginx, haproxy, openssl or PostgreSQL server makes that part one SKIP line
(.ci/run installs them). Output: "PASS name" / "FAIL name: detail" lines, then
"N passed, N failed".
"""
import http.client
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from e2e import HOST, Server, T, check, command_for, short, summary  # noqa: E402
from todo_pg import pg_db  # noqa: E402

README = os.path.join(HERE, "..", "README.md")
TRUSTED = "127.0.0.1"
# the README says 2500 ms for checks every second, "longer than two failed checks"; the
# test checks every 200 ms (class HAProxy): two failed checks take 400 ms, and up to a
# check's interval more before the first of them
HAPROXY_DRAIN_MS = "1000"


def which(tool):
    """The program's path; nginx and haproxy live in /usr/sbin, off a user's PATH."""
    return shutil.which(tool, path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"]))


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def readme_file(name):
    """The text of the README's fenced block whose first line is "# name"."""
    with open(README, encoding="utf-8") as f:
        text = f.read()
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S):
        if block.startswith("# " + name + "\n"):
            return block
    raise LookupError("README.md has no block for " + name)


def wait_until(condition, timeout, step=0.02):
    """Polls condition until it is true (returns True) or timeout passes (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


# ---------------------------------------------------------------------------
# the pieces: instances, a certificate, a steady load
# ---------------------------------------------------------------------------
class Instance:
    """One app process on a fixed port, started again on the same port when asked."""

    def __init__(self, binary, port, env):
        self.binary, self.port, self.env = binary, port, dict(env, PORT=str(port), MW_ACCESS_LOG="1")
        self.server = None
        self.start()

    def start(self):
        self.server = Server(command_for(self.binary), self.env)
        return self.server.wait_ready()

    def served(self, path):
        """How many requests for path this process has logged (its access log)."""
        needle = " GET %s " % path
        with self.server.cond:
            return sum(needle in line for line in self.server.lines)

    def stop(self):
        """SIGTERM, and the exit status (None when it did not exit in time)."""
        self.server.terminate()
        return self.server.wait_exit(T(20))

    def kill(self):
        self.server.kill()


def make_certificate(directory):
    """A self-signed certificate for localhost: (cert, key, cert+key) file names."""
    cert, key, both = (os.path.join(directory, n) for n in ("cert.pem", "key.pem", "both.pem"))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True, timeout=T(30))
    with open(both, "w") as out:
        for name in (cert, key):
            with open(name) as f:
                out.write(f.read())
    return cert, key, both


class Load:
    """Clients on keep-alive TLS connections, each sending GET path in a loop; every
    answer that is not 200 with a JSON array, and every broken connection, is an error."""

    def __init__(self, port, cafile, path, clients=4):
        self.port, self.path = port, path
        self.context = ssl.create_default_context(cafile=cafile)
        self.ok, self.errors = 0, []
        self.lock, self.stopping = threading.Lock(), threading.Event()
        self.threads = [threading.Thread(target=self._client, daemon=True) for _ in range(clients)]
        for t in self.threads:
            t.start()

    def _client(self):
        conn = None
        while not self.stopping.is_set():
            try:
                if conn is None:
                    conn = http.client.HTTPSConnection(HOST, self.port, context=self.context, timeout=T(10))
                conn.request("GET", self.path)
                resp = conn.getresponse()
                body = resp.read()
                good = resp.status == 200 and body.startswith(b"[")
                with self.lock:
                    if good:
                        self.ok += 1
                    else:
                        self.errors.append("%d %s" % (resp.status, short(body, 80)))
                if resp.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                with self.lock:
                    self.errors.append("%s: %s" % (type(e).__name__, e))
                if conn:
                    conn.close()
                conn = None
        if conn:
            conn.close()

    def answered(self):
        with self.lock:
            return self.ok

    def more(self, n, timeout):
        """Waits until n more requests have been answered."""
        target = self.answered() + n
        return wait_until(lambda: self.answered() >= target, timeout)

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(T(15))
        with self.lock:
            return self.ok, list(self.errors)


# ---------------------------------------------------------------------------
# the proxies, configured as the README shows
# ---------------------------------------------------------------------------
def upstream_ports(text, ports):
    """The README's instance ports 8081, 8082, 8083 replaced by the test's."""
    for readme_port, port in zip((8081, 8082, 8083), ports):
        text = text.replace("127.0.0.1:%d" % readme_port, "127.0.0.1:%d" % port)
    return text


class Nginx:
    name = "nginx"

    def __init__(self, directory, port, ports, cert, key, both):
        site = upstream_ports(readme_file("/etc/nginx/conf.d/todo.conf"), ports)
        # nginx's default fail_timeout=10s, a tenth as long: an instance that failed is
        # tried again after a second (the same sequence of events in less time)
        for p in ports:
            assert "server 127.0.0.1:%d;" % p in site
            site = site.replace("server 127.0.0.1:%d;" % p, "server 127.0.0.1:%d fail_timeout=1s;" % p)
        site = site.replace("listen 443 ssl;", "listen 127.0.0.1:%d ssl;" % port)
        site = site.replace("/etc/ssl/certs/todo.example.org.pem", cert)
        site = site.replace("/etc/ssl/private/todo.example.org.key", key)
        # what /etc/nginx/nginx.conf gives an installed nginx, in the test's directory
        conf = os.path.join(directory, "nginx.conf")
        with open(conf, "w") as f:
            f.write("pid %s/nginx.pid;\nerror_log %s/error.log;\nevents {}\nhttp {\n    access_log off;\n"
                    "    client_body_temp_path %s/body;\n    proxy_temp_path %s/proxy;\n%s}\n"
                    % (directory, directory, directory, directory, site))
        self.log = os.path.join(directory, "error.log")
        self.proc = subprocess.Popen([which("nginx"), "-e", self.log, "-p", directory, "-c", conf, "-g", "daemon off;"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def stop(self):
        self.proc.send_signal(signal.SIGQUIT)  # nginx's graceful stop
        try:
            self.proc.wait(T(10))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class HAProxy:
    name = "haproxy"

    def __init__(self, directory, port, ports, cert, key, both):
        cfg = upstream_ports(readme_file("/etc/haproxy/haproxy.cfg"), ports)
        cfg = cfg.replace("bind :443 ssl", "bind 127.0.0.1:%d ssl" % port)
        cfg = cfg.replace("/etc/haproxy/todo.example.org.pem", both)
        # the README's health checks five times as often, with the drain delay to match
        # (HAPROXY_DRAIN_MS); a check may still take the README's 1 s (its timeout is
        # the interval unless set); and the statistics, to count retried requests
        assert "inter 1s fall 2" in cfg and "option httpchk GET /readyz\n" in cfg and "\nglobal\n" in cfg
        cfg = cfg.replace("inter 1s fall 2", "inter 200ms fall 2")
        cfg = cfg.replace("option httpchk GET /readyz\n", "option httpchk GET /readyz\n    timeout check 1s\n")
        self.stats = os.path.join(directory, "stats.sock")
        cfg = cfg.replace("\nglobal\n", "\nglobal\n    stats socket %s mode 600\n" % self.stats)
        conf = os.path.join(directory, "haproxy.cfg")
        with open(conf, "w") as f:
            f.write(cfg)
        self.proc = subprocess.Popen([which("haproxy"), "-db", "-f", conf], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def retried(self):
        """Requests the backend retried or sent to another instance (HAProxy's wretr and
        wredis), or None when the statistics cannot be read."""
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(T(5))
                s.connect(self.stats)
                s.sendall(b"show stat\n")
                text = b"".join(iter(lambda: s.recv(65536), b"")).decode()
        except OSError:
            return None
        lines = text.lstrip("# ").splitlines()
        names = lines[0].split(",")
        for line in lines[1:]:
            row = dict(zip(names, line.split(",")))
            if row.get("pxname") == "todo" and row.get("svname") == "BACKEND":
                return int(row["wretr"] or 0) + int(row["wredis"] or 0)
        return None

    def stop(self):
        self.proc.send_signal(signal.SIGUSR1)  # HAProxy's soft stop
        try:
            self.proc.wait(T(10))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# ---------------------------------------------------------------------------
# the checks
# ---------------------------------------------------------------------------
def proxy_answers(port, cafile, path="/todos"):
    """True once GET path through the proxy answers 200."""
    try:
        conn = http.client.HTTPSConnection(HOST, port, context=ssl.create_default_context(cafile=cafile),
                                           timeout=T(2))
        conn.request("GET", path)
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except (OSError, http.client.HTTPException):
        return False


def back_in_rotation(instance, timeout):
    """The balancer sends the (re)started instance requests again."""
    before = instance.served("/todos")
    return wait_until(lambda: instance.served("/todos") >= before + 10, timeout)


def kill_and_restart(proxy, instances, load):
    victim = instances[1]
    check(proxy + "_load_flows_through_all_three", all(back_in_rotation(i, T(15)) for i in instances),
          "served: %s" % [i.served("/todos") for i in instances])
    victim.kill()
    check(proxy + "_load_flows_after_sigkill_of_one_instance", load.more(300, T(20)), "answered %d" % load.answered())
    check(proxy + "_killed_instance_starts_again", victim.start(), victim.server.stderr_text())
    check(proxy + "_balancer_brings_it_back", back_in_rotation(victim, T(20)),
          "served %d; errors %s" % (victim.served("/todos"), load.errors[:3]))


def rolling_restart(proxy, instances, load):
    for n, instance in enumerate(instances):
        status = instance.stop()
        check("%s_rolling_restart_%d_stops_cleanly" % (proxy, n), status == 0,
              "exit status %s: %s" % (status, instance.server.stderr_text()))
        check("%s_rolling_restart_%d_starts_again" % (proxy, n), instance.start(), instance.server.stderr_text())
        check("%s_rolling_restart_%d_back_in_rotation" % (proxy, n), back_in_rotation(instance, T(20)),
              "served %d" % instance.served("/todos"))


def check_behind(proxy_class, binary, conninfo, directory, certificate):
    name = proxy_class.name
    ports = [free_port() for _ in range(3)]
    drain = HAPROXY_DRAIN_MS if proxy_class is HAProxy else "0"
    env = dict(DATABASE_URL=conninfo, MW_TRUSTED_PROXIES=TRUSTED, MW_DRAIN_DELAY_MS=drain)
    instances = [Instance(binary, port, env) for port in ports]
    proxy = load = None
    try:
        if not check(name + "_instances_start", all(i.server.port for i in instances),
                     " | ".join(i.server.stderr_text() for i in instances)):
            return
        port = free_port()
        os.makedirs(os.path.join(directory, name), exist_ok=True)
        proxy = proxy_class(os.path.join(directory, name), port, ports, *certificate)
        if not check(name + "_serves_the_instances_over_tls", wait_until(lambda: proxy_answers(port, certificate[0]),
                                                                          T(20), 0.1),
                     short(proxy.proc.stderr.read1(2000) if proxy.proc.poll() is not None else b"still running")):
            return
        load = Load(port, certificate[0], "/todos")
        check(name + "_load_starts", load.more(200, T(20)), "errors: %s" % load.errors[:3])
        kill_and_restart(name, instances, load)
        retried = proxy.retried() if proxy_class is HAProxy else None
        rolling_restart(name, instances, load)
        if proxy_class is HAProxy:  # drained instances: the balancer had stopped sending first
            after = proxy.retried()
            check(name + "_rolling_restart_needed_no_retry", retried is not None and after == retried,
                  "retried or redispatched: %s before, %s after" % (retried, after))
        answered, errors = load.stop()
        load = None
        check(name + "_no_client_saw_an_error", not errors and answered > 1000,
              "%d answered, %d errors: %s" % (answered, len(errors), errors[:5]))
    finally:
        if load:
            load.stop()
        if proxy:
            proxy.stop()
        for i in instances:
            i.kill()


def plain_request(port, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection(HOST, port, timeout=T(10))
    try:
        conn.request(method, path, body, headers or {})
        resp = conn.getresponse()
        return resp.status, resp.getheader("Set-Cookie") or "", resp.read()
    finally:
        conn.close()


def tls_request(port, cafile, method, path, body=None, headers=None):
    conn = http.client.HTTPSConnection(HOST, port, context=ssl.create_default_context(cafile=cafile), timeout=T(10))
    try:
        conn.request(method, path, body, headers or {})
        resp = conn.getresponse()
        return resp.status, resp.getheader("Set-Cookie") or "", resp.read()
    finally:
        conn.close()


def check_sessions_across_instances(binary, directory, certificate):
    """Three instances of site.c with one key behind nginx: a login through the proxy
    (its CSRF check passes only if the instance believes the proxy's https and host) is
    a session every instance knows."""
    env = dict(MW_SECRET_KEY="deploy-test-key-0123456789abcdef", MW_TRUSTED_PROXIES=TRUSTED)
    instances = [Instance(binary, free_port(), env) for _ in range(3)]
    proxy = None
    try:
        if not check("site_instances_start", all(i.server.port for i in instances),
                     " | ".join(i.server.stderr_text() for i in instances)):
            return
        port = free_port()
        os.makedirs(os.path.join(directory, "site"), exist_ok=True)
        proxy = Nginx(os.path.join(directory, "site"), port, [i.port for i in instances], *certificate)
        check("site_behind_nginx_answers", wait_until(lambda: proxy_answers(port, certificate[0], "/"), T(20), 0.1))
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        status, _, _ = tls_request(port, certificate[0], "POST", "/login", "user=demo&password=demo",
                                   dict(form, Origin="https://evil.example"))
        check("site_login_from_another_origin_refused_behind_nginx", status == 403, "status %d" % status)
        status, cookie, _ = tls_request(port, certificate[0], "POST", "/login", "user=demo&password=demo",
                                        dict(form, Origin="https://127.0.0.1:%d" % port))
        session = cookie.split(";")[0]
        check("site_login_through_nginx_from_its_own_https_origin", status == 303 and session,
              "%d %s" % (status, cookie))
        for n, instance in enumerate(instances, 1):
            status, _, body = plain_request(instance.port, "GET", "/me", headers={"Cookie": session})
            check("site_session_valid_on_instance_%d" % n, status == 200 and body == b'{"user":"demo"}',
                  "%d %s" % (status, short(body)))
        status, _, _ = plain_request(instances[2].port, "GET", "/me", headers={"Cookie": session[:-2] + "xx"})
        check("site_tampered_session_refused", status == 401, "status %d" % status)
    finally:
        if proxy:
            proxy.stop()
        for i in instances:
            i.kill()


def unit_setting(unit, key):
    """Every value of key= in a systemd unit's text."""
    return [m.group(1).strip() for m in re.finditer(r"^%s=(.*)$" % re.escape(key), unit, re.M)]


def check_systemd_units(binary, conninfo, directory):
    """The README's units: systemd-analyze finds nothing wrong with them, and the service
    started as systemd would start it (systemd-socket-activate hands it the socket)
    serves on that socket."""
    socket_unit, service_unit = readme_file("/etc/systemd/system/todo.socket"), \
        readme_file("/etc/systemd/system/todo.service")
    port = free_port()
    socket_unit = socket_unit.replace("ListenStream=127.0.0.1:8081", "ListenStream=127.0.0.1:%d" % port)
    service_unit = service_unit.replace("ExecStart=/usr/local/bin/todo_pg", "ExecStart=" + os.path.abspath(binary))
    units = os.path.join(directory, "units")
    os.makedirs(units, exist_ok=True)
    for name, text in (("todo.socket", socket_unit), ("todo.service", service_unit)):
        with open(os.path.join(units, name), "w") as f:
            f.write(text)
    if which("systemd-analyze"):
        done = subprocess.run(["systemd-analyze", "verify", "--man=no", os.path.join(units, "todo.socket"),
                               os.path.join(units, "todo.service")], capture_output=True, text=True, timeout=T(60))
        problems = [line for line in done.stderr.splitlines() if "todo." in line]
        check("systemd_units_verify", done.returncode == 0 and not problems, short(done.stderr, 600))
    if not which("systemd-socket-activate"):
        print("SKIP systemd socket activation: needs systemd-socket-activate (apt-get install systemd)")
        return
    env = dict(kv.split("=", 1) for kv in unit_setting(service_unit, "Environment"))
    env["DATABASE_URL"] = conninfo
    listen = unit_setting(socket_unit, "ListenStream")[0]
    command = ["systemd-socket-activate", "-l", listen] + \
        ["--setenv=%s=%s" % kv for kv in env.items()] + unit_setting(service_unit, "ExecStart")[0].split()
    held = socket.socket()  # PORT names a port already taken: the service must not bind one itself
    held.bind((HOST, 0))
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=dict(os.environ, PORT=str(held.getsockname()[1])))
    try:
        def answers():
            try:
                return plain_request(port, "GET", "/todos")[0] == 200
            except OSError:
                return False
        check("systemd_socket_activation_serves_on_the_socket", wait_until(answers, T(20), 0.1),
              "exit status %s" % proc.poll())
        proc.send_signal(signal.SIGTERM)
        status = proc.wait(T(20))
        err = proc.stderr.read().decode("utf-8", "replace")
        check("systemd_service_stops_cleanly", status == 0 and "microweb: stopped" in err,
              "exit status %s: %s" % (status, short(err, 400)))
    finally:
        held.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    todo_binary, site_binary = sys.argv[1], sys.argv[2]
    missing = [tool for tool in ("nginx", "haproxy", "openssl") if not which(tool)]
    started = pg_db("start")
    if missing or started.returncode != 0:
        print("SKIP readme_deployment: needs %s (apt-get install nginx haproxy openssl postgresql)"
              % (", ".join(missing) or "the PostgreSQL server"))
        return summary()
    conninfo = started.stdout.strip()
    try:
        with tempfile.TemporaryDirectory() as directory:
            os.chmod(directory, 0o755)  # nginx's workers run as another user
            certificate = make_certificate(directory)
            for proxy_class in (Nginx, HAProxy):
                check_behind(proxy_class, todo_binary, conninfo, directory, certificate)
            check_systemd_units(todo_binary, conninfo, directory)
            check_sessions_across_instances(site_binary, directory, certificate)
    finally:
        pg_db("stop", conninfo)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
