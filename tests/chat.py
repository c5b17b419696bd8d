#!/usr/bin/env python3
"""End-to-end tests of examples/chat.c, the WebSocket example, over raw sockets with a
small RFC 6455 client written here (masked frames out, unmasked frames in).

usage: python3 tests/chat.py CHAT_BINARY [--quick]

  GET /         the chat page: HTML whose inline script connects to /ws/chat
  GET /ws/echo  every message comes back as it was sent (text as text, binary as binary)
  GET /ws/chat  {"name":..,"text":..} in; {"type":"message","name":..,"text":..} out to every
                member of the room, the sender too; join and leave notices with the count

Each test gets a server of its own (PORT=0, MW_THREADS=4: broadcasts run on several
workers at once), stopped with SIGTERM afterwards; it must exit with status 0.
--quick (for sanitizer builds): the load test moves fewer messages; every check still runs.
E2E_TIMEOUT_SCALE stretches the time limits, as for tests/e2e.py.
Prints "PASS name" / "FAIL name: detail" per check and "N passed, N failed" last.
"""
import base64
import hashlib
import json
import os
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import HOST, Reader, Response, Server, T, Tally, check, command_for, exchange, parse_head, short  # noqa: E402

TEXT, BINARY, CLOSE, PING, PONG, CONTINUATION = 1, 2, 8, 9, 10, 0
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
CONNECT_LINE = ("new WebSocket((location.protocol==='https:'?'wss://':'ws://')+location.host+'/ws/chat')")
MAX_MESSAGE = 64 * 1024  # the example's MW_LIMIT_WS_MAX_MESSAGE


# ---------------------------------------------------------------------------
# a WebSocket client (RFC 6455)
# ---------------------------------------------------------------------------
def masked(key, data):
    """data XOR the 4-byte key repeated (RFC 6455 §5.3)."""
    stream = (key * (len(data) // 4 + 1))[:len(data)]
    return (int.from_bytes(data, "big") ^ int.from_bytes(stream, "big")).to_bytes(len(data), "big")


def client_frame(opcode, payload, fin=True):
    """One frame as a client must send it: masked (RFC 6455 §5.1)."""
    n, key = len(payload), os.urandom(4)
    head = bytes([(0x80 if fin else 0) | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return head + key + masked(key, payload)


def accept_for(key):
    """The Sec-WebSocket-Accept a server must answer to key (RFC 6455 §4.2.2)."""
    return base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()


class ProtocolError(Exception):
    pass


class Ws:
    """One WebSocket connection; .response is the handshake's answer."""

    def __init__(self, port, path, headers=None, rcvbuf=None):
        """rcvbuf: a small receive buffer (set before connecting, so the window is small too)."""
        self.sock = socket.socket()
        self.sock.settimeout(T(5))
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.connect((HOST, port))
        self.reader = Reader(self.sock.recv)
        key = base64.b64encode(os.urandom(16)).decode()
        fields = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": key,
                  "Sec-WebSocket-Version": "13"}
        fields.update(headers or {})
        lines = ["GET %s HTTP/1.1" % path, "Host: %s:%d" % (HOST, port)] + ["%s: %s" % kv for kv in fields.items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        self.response = Response(*parse_head(self.reader.read_until(b"\r\n\r\n")))
        self.open = self.response.status == 101
        if self.open and self.response.header("Sec-WebSocket-Accept") != accept_for(key):
            raise ProtocolError("101 with Sec-WebSocket-Accept %s" % self.response.header("Sec-WebSocket-Accept"))
        if not self.open and self.response.header("Content-Length"):
            self.response.body = self.reader.read_exact(int(self.response.header("Content-Length")))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.sock.close()

    def send(self, opcode, payload, fin=True):
        self.sock.sendall(client_frame(opcode, payload, fin))

    def send_text(self, text):
        self.send(TEXT, text.encode())

    def say(self, name, text):
        self.send_text(json.dumps({"name": name, "text": text}))

    def frame(self):
        """(opcode, payload) of the next frame; the server's are unmasked and whole."""
        b0, b1 = self.reader.read_exact(2)
        n = b1 & 0x7f
        if n == 126:
            n = struct.unpack("!H", self.reader.read_exact(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self.reader.read_exact(8))[0]
        if b1 & 0x80 or not b0 & 0x80 or b0 & 0x70:
            raise ProtocolError("server frame with mask, FIN=0 or RSV bits: %02x %02x" % (b0, b1))
        return b0 & 0x0f, self.reader.read_exact(n)

    def message(self):
        """(opcode, payload) of the next data or close frame; pings are answered."""
        while True:
            opcode, payload = self.frame()
            if opcode == PING:
                self.send(PONG, payload)
            elif opcode != PONG:
                return opcode, payload

    def json(self):
        """The next message, a text one holding JSON, as a dict."""
        opcode, payload = self.message()
        if opcode != TEXT:
            raise ProtocolError("expected a text message, got opcode %d %s" % (opcode, short(payload)))
        return json.loads(payload.decode("utf-8"))

    def chat(self):
        """The next {"type":"message"}, after any join and leave notices."""
        while (m := self.json())["type"] in ("join", "leave"):
            pass
        return m

    def close(self, code=1000):
        """The close handshake from our side: (code, reason) the server answered, and
        whether the TCP connection then ended with nothing more (RFC 6455 §5.5.1)."""
        self.send(CLOSE, struct.pack("!H", code))
        while (frame := self.message())[0] != CLOSE:
            pass
        ended = self.ended()
        self.sock.close()
        return close_payload(frame[1]) + (ended,)

    def ended(self):
        """True when the server's next move is a FIN with no byte before it."""
        if self.reader.buf:
            return False
        try:
            return self.sock.recv(1) == b""
        except OSError:
            return False


def close_payload(payload):
    return (struct.unpack("!H", payload[:2])[0], payload[2:].decode("utf-8")) if payload else (1005, "")


def chat_message(name, text):
    return {"type": "message", "name": name, "text": text}


# ---------------------------------------------------------------------------
# the page
# ---------------------------------------------------------------------------
def test_page_is_html_with_the_script_that_connects(app):
    resp = exchange(app.port, "GET", "/")
    body = resp.body.decode("utf-8", "replace")
    check("page_is_200_html_utf8", resp.status == 200 and resp.header("Content-Type") == "text/html; charset=utf-8",
          resp.summary())
    check("page_script_connects_to_ws_chat", "<script>" in body and CONNECT_LINE in body, short(body, 400))
    # user text becomes text nodes: no innerHTML anywhere; no resource from elsewhere
    check("page_shows_text_with_textcontent_only", "textContent" in body and "innerHTML" not in body and
          "insertAdjacentHTML" not in body, short(body, 400))
    check("page_loads_nothing_from_elsewhere", " src=" not in body and " href=" not in body and "@import" not in body,
          short(body, 400))


# ---------------------------------------------------------------------------
# /ws/echo
# ---------------------------------------------------------------------------
def test_handshake_answers_101_with_the_accept_key(app):
    with Ws(app.port, "/ws/echo") as c:
        r = c.response
        check("echo_handshake_is_101_upgrade_websocket", r.status == 101 and
              (r.header("Upgrade") or "").lower() == "websocket" and
              (r.header("Connection") or "").lower() == "upgrade" and r.header("Sec-WebSocket-Extensions") is None,
              r.summary())


def test_echo_text_comes_back_as_text(app):
    text = "héllo, wörld ✓ 🎉 " + "x" * 300  # multi-byte UTF-8, a 16-bit length
    with Ws(app.port, "/ws/echo") as c:
        c.send_text(text)
        got = c.message()
        check("echo_text_comes_back_as_text", got == (TEXT, text.encode()), short(got))
        c.send_text("")
        got = c.message()
        check("echo_empty_text_comes_back", got == (TEXT, b""), short(got))
        check("echo_closes_cleanly_with_1000", c.close() == (1000, "", True), "")


def test_echo_binary_comes_back_as_binary(app):
    data = bytes(range(256)) * 200 + b"\xff\xfe\x00"  # not UTF-8; a 64-bit length is not needed, 16 is
    with Ws(app.port, "/ws/echo") as c:
        c.send(BINARY, data)
        got = c.message()
        check("echo_binary_comes_back_as_binary", got == (BINARY, data), short(got))


def test_echo_fragmented_message_comes_back_whole(app):
    with Ws(app.port, "/ws/echo") as c:
        c.send(TEXT, "frag".encode(), fin=False)
        c.send(PING, b"between the fragments")  # RFC 6455 §5.4: control frames may interleave
        c.send(CONTINUATION, "men".encode(), fin=False)
        c.send(CONTINUATION, "ted ✓".encode())
        first = c.frame()
        got = c.message() if first[0] == PONG else first
        check("echo_fragments_reassembled_into_one_message", got == (TEXT, "fragmented ✓".encode()), short(got))
        check("echo_ping_between_fragments_answered_with_pong", first == (PONG, b"between the fragments"), short(first))


def test_echo_message_over_the_limit_closes_with_1009(app):
    with Ws(app.port, "/ws/echo") as c:
        c.send(BINARY, b"a" * MAX_MESSAGE)
        got = c.message()
        check("echo_message_at_the_limit_comes_back", got == (BINARY, b"a" * MAX_MESSAGE), short(got))
        c.send(BINARY, b"a" * (MAX_MESSAGE + 1))
        opcode, payload = c.message()
        check("echo_message_over_the_limit_closes_with_1009", opcode == CLOSE and close_payload(payload)[0] == 1009,
              short((opcode, payload)))
        c.send(CLOSE, payload[:2])
        check("echo_connection_ends_after_the_close_handshake", c.ended(), "")


def test_websocket_from_another_origin_is_refused(app):
    with Ws(app.port, "/ws/chat", {"Origin": "http://evil.example"}) as c:
        check("chat_from_another_origin_is_403", c.response.status == 403, c.response.summary())
    with Ws(app.port, "/ws/chat", {"Origin": "http://%s:%d" % (HOST, app.port)}) as c:
        check("chat_from_the_page_origin_is_101", c.response.status == 101, c.response.summary())


# ---------------------------------------------------------------------------
# /ws/chat
# ---------------------------------------------------------------------------
def join_room(port, n):
    """n members, the notices each read as the others came in: ([Ws], [[notice]])."""
    members, notices = [], []
    for i in range(n):
        members.append(Ws(port, "/ws/chat"))
        notices.append([])
        for m, seen in zip(members, notices):
            seen.append(m.json())
    return members, notices


def joined(port, n):
    """n members of the room, each having seen the others join, counted 1, 2, ... n."""
    members, notices = join_room(port, n)
    want = [[{"type": "join", "online": k} for k in range(i + 1, n + 1)] for i in range(n)]
    if notices != want:
        raise ProtocolError("join notices %s" % short(notices, 400))
    return members


def test_broadcast_reaches_every_member_including_the_sender(app):
    members, notices = join_room(app.port, 3)
    try:
        check("join_notices_count_who_is_online", notices == [[{"type": "join", "online": k} for k in range(i + 1, 4)]
                                                              for i in range(3)], short(notices))
        members[1].say("bob", "hello, room")
        got = [m.json() for m in members]
        check("chat_message_reaches_every_member_and_the_sender", got == [chat_message("bob", "hello, room")] * 3,
              short(got))
        for i, m in enumerate(members):
            m.say("member%d" % i, "n%d" % i)
        per_member = [sorted(m.json()["text"] for _ in members) for m in members]
        check("chat_messages_from_everyone_reach_everyone", per_member == [["n0", "n1", "n2"]] * 3, short(per_member))
    finally:
        for m in members:
            m.sock.close()


def test_names_and_texts_are_json_escaped(app):
    name = '"</script>\\ \u00e9'
    text = '<img src=x onerror=alert(1)> "quoted" back\\slash\nnew line\ttab \x01 \u2028 \U0001f600 {"type":"join"}'
    members = joined(app.port, 2)
    try:
        members[0].say(name, text)
        raw = [m.message() for m in members]
        got = [json.loads(p) for _, p in raw]
        check("escaped_name_and_text_arrive_unchanged", got == [chat_message(name, text)] * 2, short(raw))
        check("escaped_message_is_json_without_raw_control_characters",
              all(op == TEXT and not any(b < 0x20 for b in p) for op, p in raw), short(raw))
    finally:
        for m in members:
            m.sock.close()


def test_malformed_messages_get_an_error_only_for_the_sender(app):
    members = joined(app.port, 2)
    try:
        bad = ["not json", "[1,2]", '{"name":"ada"}', '{"text":"no name"}', '{"name":"","text":"x"}',
               json.dumps({"name": "x" * 33, "text": "too long a name"}), '{"name":"a\\u0000b","text":"NUL"}']
        for i, text in enumerate(bad):
            members[0].send_text(text)
            reply = members[0].json()
            check("malformed_message_%d_gets_an_error_back" % i, reply.get("type") == "error" and
                  "name" in reply.get("text", ""), "%s -> %s" % (short(text), short(reply)))
        members[0].send(BINARY, b'{"name":"ada","text":"binary"}')
        check("binary_in_the_room_gets_error", members[0].json().get("type") == "error")
        members[0].say("x" * 32, "a 32-byte name is fine")
        got = members[1].json()
        check("other_member_saw_no_error_only_the_good_message", got == chat_message("x" * 32, "a 32-byte name is fine"),
              short(got))
    finally:
        for m in members:
            m.sock.close()


def test_member_that_leaves_no_longer_receives(app):
    a, b, c, d = joined(app.port, 4)
    try:
        c.say("carol", "bye")
        d.say("dave", "me too")
        for m in (a, b):
            m.json(), m.json()
        for m in (c, d):
            m.json(), m.json()
        check("leaving_member_gets_close_1000_then_the_end", c.close() == (1000, "", True), "")
        got = [m.json() for m in (a, b, d)]
        check("others_hear_carol_left", got == [{"type": "leave", "name": "carol", "online": 3}] * 3, short(got))
        d.sock.close()  # gone without a close frame: the server finds out from the TCP end
        got = [m.json() for m in (a, b)]
        check("others_hear_dave_dropped", got == [{"type": "leave", "name": "dave", "online": 2}] * 2, short(got))
        a.say("ann", "still here?")
        got = [m.json() for m in (a, b)]
        check("room_without_the_leavers_still_talks", got == [chat_message("ann", "still here?")] * 2, short(got))
        with Ws(app.port, "/ws/chat") as e:
            got = [m.json() for m in (a, b, e)]
            check("newcomer_counted_without_the_leavers", got == [{"type": "join", "online": 3}] * 3, short(got))
        got = [m.json() for m in (a, b)]
        check("member_that_never_spoke_leaves_without_a_name", got == [{"type": "leave", "online": 2}] * 2, short(got))
    finally:
        for m in (a, b, c, d):
            m.sock.close()


def test_member_that_never_reads_is_closed_not_waited_for(app):
    # mw_ws_broadcast never waits: a member whose send buffer is full gets close 1008
    a, b = joined(app.port, 2)
    slow = Ws(app.port, "/ws/chat", rcvbuf=4096)
    try:
        notices = [a.json(), b.json()]
        text, count, wrong = "x" * 60000, 200, []
        for i in range(count):  # 12 MB: more than the socket and the send buffer hold
            a.say("ann", "%d %s" % (i, text))
            got = [m.json() for m in (a, b)]
            if got != [chat_message("ann", "%d %s" % (i, text))] * 2:
                wrong.append((i, short(got)))
        check("others_get_every_message_while_one_member_never_reads", not wrong, short(wrong))
        kinds = []
        while (frame := slow.message())[0] != CLOSE:
            kinds.append(frame[0])
        check("slow_member_gets_what_it_had_then_close_1008", close_payload(frame[1]) == (1008, "too slow") and
              0 < len(kinds) < count + 1 and set(kinds) == {TEXT}, "%s after %d messages" % (short(frame), len(kinds)))
        slow.send(CLOSE, frame[1][:2])
        check("slow_member_connection_ends_after_the_close_handshake", slow.ended())
        got = notices + [a.json(), b.json()]
        check("others_hear_the_slow_member_join_and_leave",
              got == [{"type": "join", "online": 3}] * 2 + [{"type": "leave", "online": 2}] * 2, short(got))
    finally:
        for m in (a, b, slow):
            m.sock.close()


def test_sigterm_closes_every_websocket_with_1001(app):
    members = joined(app.port, 2)
    with Ws(app.port, "/ws/echo") as echo:
        app.server.terminate()
        for i, c in enumerate(members + [echo]):
            while (frame := c.message())[0] != CLOSE:
                pass
            code, _ = close_payload(frame[1])
            c.send(CLOSE, frame[1][:2])
            check("sigterm_closes_websocket_%d_with_1001" % i, code == 1001 and c.ended(), short(frame))
    for m in members:
        m.sock.close()


# ---------------------------------------------------------------------------
# load: members come and go while others talk
# ---------------------------------------------------------------------------
def listen(member, want, got, errors):
    """Reads chat messages into got until `want` of them came."""
    try:
        while len(got) < want:
            m = member.json()
            if m["type"] == "message" and m["name"] != "visitor":
                got.append((m["name"], int(m["text"])))
    except Exception as e:  # noqa: BLE001 - any failure is reported by the test
        errors.append("%s: %s" % (type(e).__name__, e))


def talk(member, name, count, errors):
    try:
        for i in range(count):
            member.say(name, str(i))
    except OSError as e:
        errors.append("%s sending: %s" % (name, e))


def come_and_go(port, rounds, errors):
    """Members that join, maybe say something, and leave, one after the other."""
    try:
        for i in range(rounds):
            with Ws(port, "/ws/chat") as c:
                if c.response.status != 101:
                    raise ProtocolError(c.response.summary())
                if i % 3 == 0:
                    c.say("visitor", "-1")
                if i % 2 == 0:
                    c.close()  # the others without a close frame: dropped
    except Exception as e:  # noqa: BLE001
        errors.append("come_and_go: %s: %s" % (type(e).__name__, e))


def wait_for_online(port, want):
    """The count a newcomer is told, once it is want (a dropped member is counted out
    when the server sees its connection end), or the last one seen after a while."""
    deadline = time.monotonic() + T(5)
    while True:
        with Ws(port, "/ws/chat") as c:
            online = c.json().get("online")
        if online == want or time.monotonic() > deadline:
            return online
        time.sleep(0.05)


def test_members_come_and_go_while_others_talk(app):
    listeners_n, talkers_n, each = (6, 4, 100) if app.quick else (16, 6, 500)
    members = [Ws(app.port, "/ws/chat") for _ in range(listeners_n + talkers_n)]
    try:
        want = talkers_n * each
        got = [[] for _ in members]
        errors = []
        threads = [threading.Thread(target=listen, args=(m, want, g, errors)) for m, g in zip(members, got)]
        threads += [threading.Thread(target=talk, args=(m, "t%d" % i, each, errors))
                    for i, m in enumerate(members[listeners_n:])]
        threads += [threading.Thread(target=come_and_go, args=(app.port, 30 if app.quick else 150, errors))
                    for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(T(60))
        check("load_threads_finish", not any(t.is_alive() for t in threads), "")
        check("load_no_client_errors", not errors, short(errors, 400))
        # everyone got every talker's messages, each once and in the order it was said;
        # the visitors' "-1" are the only others
        expected = {"t%d" % i: list(range(each)) for i in range(talkers_n)}
        wrong = []
        for i, g in enumerate(got):
            per = {name: [n for who, n in g if who == name] for name in expected}
            if per != expected:
                wrong.append((i, {k: (len(v), v[:5]) for k, v in per.items()}))
        check("load_every_member_gets_every_message_once_in_order", not wrong, short(wrong, 400))
        online = wait_for_online(app.port, len(members) + 1)
        check("load_leavers_all_counted_out", online == len(members) + 1, "online %s" % online)
    finally:
        for m in members:
            m.sock.close()


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------
class App:
    def __init__(self, server, quick):
        self.server, self.port, self.quick = server, server.port, quick


TESTS = [
    test_page_is_html_with_the_script_that_connects,
    test_handshake_answers_101_with_the_accept_key,
    test_echo_text_comes_back_as_text,
    test_echo_binary_comes_back_as_binary,
    test_echo_fragmented_message_comes_back_whole,
    test_echo_message_over_the_limit_closes_with_1009,
    test_websocket_from_another_origin_is_refused,
    test_broadcast_reaches_every_member_including_the_sender,
    test_names_and_texts_are_json_escaped,
    test_malformed_messages_get_an_error_only_for_the_sender,
    test_member_that_leaves_no_longer_receives,
    test_members_come_and_go_while_others_talk,
    test_member_that_never_reads_is_closed_not_waited_for,
    test_sigterm_closes_every_websocket_with_1001,
]


def run(binary, test, quick):
    """test against a server of its own, which must then stop cleanly (exit status 0)."""
    name = test.__name__.removeprefix("test_")
    server = Server(command_for(binary), {"MW_THREADS": "4"})
    try:
        if not check(name + "_server_starts", server.wait_ready(), server.stderr_text()):
            return
        try:
            test(App(server, quick))
        except Exception as e:  # noqa: BLE001 - a test that raises is a failure, not the end of the run
            check(name, False, "%s: %s; stderr: %s" % (type(e).__name__, e, server.stderr_text()))
        server.terminate()
        status = server.wait_exit(T(10))
        check(name + "_server_exits_0", status == 0, "exit status %s; stderr: %s" % (status, server.stderr_text()))
    finally:
        server.kill()


def main(argv):
    args = [a for a in argv if a != "--quick"]
    if len(args) != 1:
        print(__doc__.strip().splitlines()[3], file=sys.stderr)
        return 2
    for test in TESTS:
        run(args[0], test, "--quick" in argv)
    print("%d passed, %d failed" % (Tally.passed, Tally.failed), flush=True)
    return 0 if Tally.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
