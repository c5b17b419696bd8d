#!/usr/bin/env python3
"""WebSocket conformance and end-to-end tests (RFC 6455) against tests/wsapp.c.

Usage:  python3 tests/ws.py WSAPP_BINARY [--quick]

Frames are built byte by byte over raw sockets, following the case list of the
Autobahn|Testsuite: framing (1.x), ping and pong (2.x), reserved bits (3.x), opcodes
(4.x), fragmentation (5.x), UTF-8 (6.x, with codepoints split between fragments and
fail-fast on a bad byte before its frame is complete), close codes and payloads (7.x),
limits and large messages (9.x). Then the handshake and its refusals, subprotocols,
origins, the server's close, idle pings, groups and broadcast from another thread,
sends through a held handle, a client that never reads, many connections, stopping
(SIGTERM), and the valid paths again through an independent strict client, Debian's
python3-websockets.

Servers run with PORT=0 and are known ready by their "listening on" line, as in
tests/e2e.py, whose helpers (and E2E_WRAPPER, E2E_TIMEOUT_SCALE) this suite shares.
--quick: fewer connections, no 16 MiB messages, no memory measure (sanitizer and
valgrind builds).
Output: "PASS name" / "FAIL name: detail" per check, then "N passed, N failed".
"""
import asyncio
import base64
import hashlib
import itertools
import json
import os
import random
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import (HOST, Reader, Server, T, Tally, check, command_for, exchange,  # noqa: E402
                 run_each, run_server_suite, short)
from load import rss_kib  # noqa: E402

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 §1.3's example key
MW_EINVAL, MW_ECLOSED = -1, -8
TIGHT = {"WSAPP_MAX_MESSAGE": "1024", "WSAPP_SEND_BUFFER_BYTES": "65536", "WSAPP_PING_MS": "300",
         "WSAPP_CLOSE_TIMEOUT_MS": "300"}


# ---------------------------------------------------------------------------
# frames
# ---------------------------------------------------------------------------
def accept_for(key):
    """Sec-WebSocket-Accept for a key (RFC 6455 §4.2.2 item 5.4)."""
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def masked(payload, key):
    """payload XOR the 4-byte key repeated (RFC 6455 §5.3), as one big-integer XOR."""
    n = len(payload)
    if n == 0:
        return b""
    stream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")


def frame_head(opcode, length, fin=True, rsv=0, mask_bit=True):
    """The first bytes of a frame, up to (not including) the masking key (RFC 6455 §5.2)."""
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    m = 0x80 if mask_bit else 0
    if length < 126:
        return bytes([b0, m | length])
    if length < 65536:
        return bytes([b0, m | 126]) + struct.pack("!H", length)
    return bytes([b0, m | 127]) + struct.pack("!Q", length)


def frame(opcode, payload=b"", fin=True, rsv=0, mask=True, key=None):
    """A whole client frame, masked unless mask=False."""
    if not mask:
        return frame_head(opcode, len(payload), fin, rsv, False) + payload
    key = key or os.urandom(4)
    return frame_head(opcode, len(payload), fin, rsv) + key + masked(payload, key)


def close_body(code=None, reason=b""):
    return b"" if code is None else struct.pack("!H", code) + reason


def text(s):
    return s.encode("utf-8") if isinstance(s, str) else s


class Frame:
    def __init__(self, fin, rsv, opcode, masked_bit, length_form, payload):
        self.fin, self.rsv, self.opcode, self.masked, self.length_form, self.payload = (fin, rsv, opcode, masked_bit,
                                                                                        length_form, payload)

    def minimal_length(self):
        """The length in the fewest bytes, as RFC 6455 §5.2 requires of a sender."""
        n = len(self.payload)
        return self.length_form == (7 if n < 126 else 16 if n < 65536 else 64)

    def close_code(self):
        return struct.unpack("!H", self.payload[:2])[0] if len(self.payload) >= 2 else None

    def __repr__(self):
        return "Frame(fin=%d rsv=%d op=%d masked=%d len=%d %s)" % (self.fin, self.rsv, self.opcode, self.masked,
                                                                   len(self.payload), short(self.payload[:40], 60))


class Closed:
    """What came before and with the server's close frame (or the end of the connection)."""

    def __init__(self, before, close):
        self.before, self.frame = before, close
        self.code = close.close_code() if close else None
        self.reason = close.payload[2:] if close else None

    def __repr__(self):
        return "Closed(code=%s reason=%s before=%s)" % (self.code, short(self.reason), short(self.before, 200))


# ---------------------------------------------------------------------------
# the client
# ---------------------------------------------------------------------------
def handshake(path, headers=None, version="HTTP/1.1", host=HOST):
    """An opening handshake (RFC 6455 §4.1); headers add or replace fields, None drops one."""
    fields = {"Host": host, "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": KEY,
              "Sec-WebSocket-Version": "13"}
    for name, value in (headers or {}).items():
        fields.pop(name, None)
        if value is not None:
            fields[name] = value
    lines = ["GET %s %s" % (path, version)] + ["%s: %s" % kv for kv in fields.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class WS:
    """A raw connection: the handshake, then frames. Server pings are answered and kept
    aside in self.pings unless see_pings."""

    def __init__(self, port, path="/ws/echo", headers=None, extra=b"", rcvbuf=None, version="HTTP/1.1",
                 host=HOST, timeout=5.0):
        self.sock = socket.socket()
        try:
            if rcvbuf:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock.settimeout(T(timeout))
            self.sock.connect((HOST, port))
            self.reader = Reader(self.sock.recv)
            self.sock.sendall(handshake(path, headers, version, host) + extra)
            self.response = self.reader.read_response()
        except BaseException:
            self.sock.close()
            raise
        self.pings, self.see_pings = [], False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def send_in_chops(self, data, size):
        """Each piece its own send (TCP_NODELAY: its own segment), to split the server's reads."""
        for i in range(0, len(data), size):
            self.sock.sendall(data[i:i + size])

    def send_frame(self, opcode, payload=b"", **kw):
        self.send(frame(opcode, text(payload), **kw))

    def recv_frame(self, timeout=None):
        """The next frame; socket.timeout when none but pings came for the timeout."""
        if timeout is not None:
            self.sock.settimeout(T(timeout))
        deadline = time.monotonic() + (self.sock.gettimeout() or 0)
        while True:
            b0, b1 = self.reader.read_exact(2)
            n, form = b1 & 0x7F, 7
            if n == 126:
                n, form = struct.unpack("!H", self.reader.read_exact(2))[0], 16
            elif n == 127:
                n, form = struct.unpack("!Q", self.reader.read_exact(8))[0], 64
            key = self.reader.read_exact(4) if b1 & 0x80 else None
            payload = self.reader.read_exact(n)
            f = Frame(b0 >> 7, (b0 >> 4) & 7, b0 & 0xF, bool(key), form, masked(payload, key) if key else payload)
            if f.opcode == PING and not self.see_pings:
                self.pings.append(f.payload)
                self.send_frame(PONG, f.payload)
                if time.monotonic() > deadline:
                    raise socket.timeout("only pings for %.1fs" % self.sock.gettimeout())
                continue
            return f

    def read_close(self, timeout=3.0):
        """Frames until the server's close frame; Closed(before, None) if the connection
        ends first, or no close comes within timeout (pings or messages may keep coming)."""
        before = []
        deadline = time.monotonic() + T(timeout)
        try:
            while time.monotonic() < deadline:
                f = self.recv_frame(timeout)
                if f.opcode == CLOSE:
                    return Closed(before, f)
                before.append(f)
        except (OSError, ConnectionError):
            pass
        return Closed(before, None)

    def tcp_closed(self, timeout=3.0):
        """(True, "") when the server ends the TCP connection with nothing more to read."""
        if self.reader.buf:
            return False, "unread bytes %s" % short(bytes(self.reader.buf))
        self.sock.settimeout(T(timeout))
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False, "still open after %.1fs" % T(timeout)
        except ConnectionResetError:
            return True, ""  # closed; a reset is allowed once the close handshake is done
        return (True, "") if data == b"" else (False, "more bytes %s" % short(data))

    def echo(self, opcode, payload, timeout=5.0):
        """Sends one message and returns the frame that comes back."""
        self.send_frame(opcode, payload)
        return self.recv_frame(timeout)


def ws_url(path, tag):
    return path + ("&" if "?" in path else "?") + "tag=" + tag if tag else path


def connect(ctx, path="/ws/echo", tag=None, **kw):
    """A WS that got 101 (else an exception saying what came instead)."""
    ws = WS(ctx.port, ws_url(path, tag), **kw)
    if ws.response.status != 101:
        ws.sock.close()
        raise ConnectionError("handshake answered %s" % ws.response.summary())
    return ws


def stats(port, tag=None):
    r = exchange(port, "GET", "/stats" + ("?tag=" + tag if tag else ""))
    return json.loads(r.body)


def wait_stats(port, predicate, tag=None, timeout=5.0):
    """Polls /stats until predicate(stats) holds; returns the last stats."""
    deadline = time.monotonic() + T(timeout)
    while True:
        s = stats(port, tag)
        if predicate(s) or time.monotonic() > deadline:
            return s
        time.sleep(0.01)  # a poll interval, not a wait for an event


def on_close_seen(ctx, tag, timeout=5.0):
    """(code, reason) the app's on_close saw for the connection tagged tag; (0, None) if none."""
    s = wait_stats(ctx.port, lambda s: s["close_code"] != 0, tag, timeout)
    return s["close_code"], s["close_reason"]


_serial = itertools.count(1)


def unique(prefix):
    """A tag no other connection of this run has."""
    return "%s-%d" % (prefix, next(_serial))


def check_failed_with(name, ws, code, before=(), ctx=None, tag=None):
    """The server failed the connection with close `code` after the given messages
    (RFC 6455 §7.1.7), closes TCP once our close comes back, and on_close saw `code`."""
    c = ws.read_close()
    got_before = [(f.opcode, f.payload) for f in c.before]
    ok = check(name, c.code == code and got_before == list(before), "%s, want close %d after %s" % (c, code,
                                                                                                     short(before)))
    if c.frame is not None:
        try:
            ws.send_frame(CLOSE, close_body(code))
        except OSError:
            pass  # the server may already have closed; tcp_closed says whether it did
        closed, why = ws.tcp_closed()
        check(name + "_then_tcp_closed", closed, why)
    if ctx is not None and tag is not None:
        seen = on_close_seen(ctx, tag)
        check(name + "_on_close_code", seen[0] == code, "on_close saw %s" % (seen,))
    return ok


def check_echo(name, ws, opcode, payload, timeout=5.0):
    payload = text(payload)
    try:
        f = ws.echo(opcode, payload, timeout)
    except (OSError, ConnectionError) as e:
        return check(name, False, "%s: %s" % (type(e).__name__, e))
    return check(name, f.opcode == opcode and f.fin and f.payload == payload and not f.masked and f.rsv == 0,
                 "%s, want op %d %s" % (f, opcode, short(payload[:40])))


def fails(ctx, name, data, code, before=(), path="/ws/echo"):
    """Sends data on a fresh connection and checks that the server fails it with code."""
    tag = unique(name)
    with connect(ctx, path, tag) as ws:
        ws.send(data)
        check_failed_with(name, ws, code, before, ctx, tag)


# ---------------------------------------------------------------------------
# 1.x framing
# ---------------------------------------------------------------------------
LENGTHS = (0, 1, 125, 126, 127, 128, 65535, 65536, 100000)


def test_1_text_and_binary_of_every_length_form_echoed(ctx):
    """Autobahn 1.1.1-1.2.8: 7-bit, 16-bit and 64-bit lengths each way; the server's frames
    are unmasked, unfragmented, with no reserved bit, the length in the fewest bytes."""
    with connect(ctx) as ws:
        for n in LENGTHS:
            for op, name in ((TEXT, "text"), (BINARY, "binary")):
                payload = (b"*" if op == TEXT else b"\xfe") * n
                ws.send_frame(op, payload)
                f = ws.recv_frame()
                check("1_%s_%d_bytes_echoed" % (name, n),
                      f.opcode == op and f.fin and f.payload == payload and not f.masked and f.rsv == 0, f)
                check("1_%s_%d_bytes_length_minimal" % (name, n), f.minimal_length(), f)


def test_1_frame_sent_in_chops_echoed(ctx):
    """Autobahn 1.1.8 / 1.2.8: one 64 KiB frame written in pieces of 997 bytes."""
    with connect(ctx) as ws:
        for op, name in ((TEXT, "text"), (BINARY, "binary")):
            payload = bytes(range(32, 127)) * 690
            ws.send_in_chops(frame(op, payload), 997)
            f = ws.recv_frame()
            check("1_%s_frame_in_chops_echoed" % name, f.opcode == op and f.payload == payload, f)


def test_1_frames_pipelined_in_one_write(ctx):
    """Many frames in one TCP write: each answered, in order."""
    with connect(ctx) as ws:
        msgs = [("m%d" % i).encode() * (i % 7 + 1) for i in range(200)]
        ws.send(b"".join(frame(TEXT, m) for m in msgs))
        got = [ws.recv_frame().payload for _ in msgs]
        check("1_200_frames_in_one_write_echoed_in_order", got == msgs, short(got[:5]))


def test_1_frame_heads_split_anywhere(ctx):
    """Frames of random sizes back to back in one write, so that heads and payloads end
    anywhere in the server's reads; and a 64-bit head sent one byte at a time."""
    rng = random.Random(6455)
    msgs = [rng.randbytes(rng.choice((0, 1, 2, 125, 126, 127, 3000, 65536, 70000))) for _ in range(300)]
    with connect(ctx, timeout=20) as ws:
        got = []

        def reader():
            try:
                while len(got) < len(msgs):
                    got.append(ws.recv_frame().payload)
            except (OSError, ConnectionError):
                pass

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        ws.send(b"".join(frame(BINARY, m) for m in msgs))
        t.join(T(30))
        check("1_300_random_size_frames_in_one_write_echoed", got == msgs, "%d of %d right" % (
            sum(a == b for a, b in zip(got, msgs)), len(msgs)))
        whole = frame(BINARY, b"\x5a" * 70000)
        ws.send_in_chops(whole[:14], 1)
        ws.send(whole[14:])
        f = ws.recv_frame()
        check("1_64_bit_head_byte_by_byte_echoed", f.payload == b"\x5a" * 70000, f)


def test_1_whole_frames_arriving_in_pieces(ctx):
    """A one-frame message that fits the server's larger read buffer (64 KiB with its
    head: 65,522 payload bytes) is unmasked and checked where it lands as its pieces
    arrive; one byte more streams into the message instead. Pieces of 1,337 bytes cut
    through the mask's phase and through UTF-8 sequences; each message comes back whole."""
    unit = "\u00e9\u20ac\U0001f600x".encode()  # 2, 3 and 4 bytes, then ASCII
    with connect(ctx, timeout=20) as ws:
        for n in (4000, 65522, 65523):
            payload = (unit * (n // len(unit) + 1))[:n]
            while True:  # end on a whole code point, so the text stays valid
                try:
                    payload.decode()
                    break
                except UnicodeDecodeError:
                    payload = payload[:-1] + b"y"
            ws.send_in_chops(frame(TEXT, payload), 1337)
            f = ws.recv_frame()
            check("1_text_of_%d_bytes_in_1337_byte_pieces_echoed" % n, f.opcode == TEXT and f.payload == payload,
                  "%s, want %d bytes" % (f, n))


def test_1_control_frames_never_inside_a_server_frame(ctx):
    """A pong, or the close answer, is queued behind a large message being sent, never
    inside its frame (RFC 6455 §5.4: control frames may come between fragments, and the
    server does not fragment)."""
    big = bytes(range(256)) * (8 << 12)  # 8 MiB
    with connect(ctx, rcvbuf=65536, timeout=20) as ws:
        ws.send(frame(BINARY, big) + frame(PING, b"behind") + frame(CLOSE, close_body(1000, b"after")))
        got = []
        try:
            while len(got) < 3:
                got.append(ws.recv_frame(20))
        except (OSError, ConnectionError) as e:
            got.append(e)
        ops = [(f.opcode, len(f.payload)) if isinstance(f, Frame) else f for f in got]
        check("1_pong_then_close_after_a_large_frame_whole", ops[:1] == [(BINARY, len(big))] and got[0].payload == big
              and ops[1:] in ([(PONG, 6), (CLOSE, 2)], [(PONG, 6), (CLOSE, 7)]), short(ops))


# ---------------------------------------------------------------------------
# 2.x ping and pong
# ---------------------------------------------------------------------------
def test_2_ping_answered_with_pong_of_the_same_payload(ctx):
    """Autobahn 2.1-2.4, 2.6: RFC 6455 §5.5.3, a pong carries the ping's application data."""
    cases = {"empty": b"", "text": b"Hello, world!", "binary": bytes([0, 255, 254, 253, 252, 251, 250, 0]),
             "125_bytes": b"\xfe" * 125}
    with connect(ctx) as ws:
        for name, payload in cases.items():
            f = ws.echo(PING, payload)
            check("2_ping_%s_answered_with_pong" % name, f.opcode == PONG and f.fin and f.payload == payload, f)
        ws.send_in_chops(frame(PING, b"\x01" * 125), 1)
        f = ws.recv_frame()
        check("2_ping_sent_byte_by_byte_answered", f.opcode == PONG and f.payload == b"\x01" * 125, f)
        ws.send(b"".join(frame(PING, b"p%d" % i) for i in range(10)))
        got = [ws.recv_frame() for _ in range(10)]
        check("2_ten_pings_ten_pongs_in_order", [(f.opcode, f.payload) for f in got] == [(PONG, b"p%d" % i)
                                                                                          for i in range(10)], got)


def test_2_ping_over_125_bytes_fails(ctx):
    """Autobahn 2.5: a control frame's payload is at most 125 bytes (RFC 6455 §5.5)."""
    fails(ctx, "2_ping_126_bytes_closes_1002", frame(PING, b"x" * 126), 1002)


def test_2_unsolicited_pong_ignored(ctx):
    """Autobahn 2.7-2.9: an unsolicited pong is ignored (RFC 6455 §5.5.3)."""
    with connect(ctx) as ws:
        ws.send_frame(PONG)
        ws.send_frame(PONG, b"unsolicited pong payload")
        ws.send_frame(PING, b"ping payload")
        f = ws.recv_frame()
        check("2_unsolicited_pongs_ignored_then_ping_answered", f.opcode == PONG and f.payload == b"ping payload", f)
        check_echo("2_after_unsolicited_pongs_echo_works", ws, TEXT, "still here")


# ---------------------------------------------------------------------------
# 3.x reserved bits, 4.x opcodes
# ---------------------------------------------------------------------------
def test_3_reserved_bits_fail(ctx):
    """Autobahn 3.1-3.7: RSV bits without a negotiated extension fail the connection with
    1002 (RFC 6455 §5.2); what came before is answered first, nothing after it."""
    for rsv in range(1, 8):
        fails(ctx, "3_text_rsv_%d_closes_1002" % rsv, frame(TEXT, b"Hello", rsv=rsv), 1002)
    fails(ctx, "3_echo_first_then_rsv_then_ping_unanswered",
          frame(TEXT, b"first") + frame(TEXT, b"bad", rsv=2) + frame(PING, b"no"), 1002, [(TEXT, b"first")])
    for op, name in ((BINARY, "binary"), (PING, "ping"), (PONG, "pong"), (CLOSE, "close")):
        payload = close_body(1000) if op == CLOSE else b"\x00\xff"
        fails(ctx, "3_%s_rsv_closes_1002" % name, frame(op, payload, rsv=4 if op == CLOSE else 7), 1002)


def test_4_reserved_opcodes_fail(ctx):
    """Autobahn 4.1.1-4.2.5: opcodes 3-7 and 0xB-0xF are reserved (RFC 6455 §5.2)."""
    for op in (3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF):
        fails(ctx, "4_opcode_%d_closes_1002" % op, frame(op, b"payload"), 1002)
    fails(ctx, "4_echo_first_then_opcode_5_then_ping_unanswered",
          frame(TEXT, b"first") + frame(5, b"x") + frame(PING), 1002, [(TEXT, b"first")])


# ---------------------------------------------------------------------------
# 5.x fragmentation
# ---------------------------------------------------------------------------
def test_5_fragmented_control_frames_fail(ctx):
    """Autobahn 5.1, 5.2: control frames must not be fragmented (RFC 6455 §5.5)."""
    fails(ctx, "5_ping_fin_0_closes_1002", frame(PING, b"frag", fin=False) + frame(CONT, b"ment"), 1002)
    fails(ctx, "5_pong_fin_0_closes_1002", frame(PONG, b"frag", fin=False) + frame(CONT, b"ment"), 1002)
    fails(ctx, "5_close_fin_0_closes_1002", frame(CLOSE, close_body(1000), fin=False), 1002)


def test_5_fragmented_messages_reassembled(ctx):
    """Autobahn 5.3-5.8: fragments are one message; control frames may come between them
    (RFC 6455 §5.4) and are answered at once."""
    with connect(ctx) as ws:
        ws.send(frame(TEXT, b"frag", fin=False) + frame(CONT, b"ment1"))
        f = ws.recv_frame()
        check("5_text_in_two_fragments_one_message", f.opcode == TEXT and f.fin and f.payload == b"fragment1", f)
        ws.send(frame(BINARY, b"\x00", fin=False) + frame(CONT, b"\x01", fin=False) + frame(CONT, b"", fin=False) +
                frame(CONT, b"\x02"))
        f = ws.recv_frame()
        check("5_binary_in_four_fragments_one_message", f.opcode == BINARY and f.payload == b"\x00\x01\x02", f)
        ws.send_in_chops(frame(TEXT, b"chopped-", fin=False) + frame(CONT, b"fragments"), 1)
        f = ws.recv_frame()
        check("5_fragments_sent_byte_by_byte", f.opcode == TEXT and f.payload == b"chopped-fragments", f)
        ws.send(frame(TEXT, b"before-ping ", fin=False) + frame(PING, b"in between") + frame(CONT, b"after-ping"))
        got = [ws.recv_frame(), ws.recv_frame()]
        check("5_ping_between_fragments_answered_first",
              [(f.opcode, f.payload) for f in got] == [(PONG, b"in between"), (TEXT, b"before-ping after-ping")], got)
        ws.send(frame(TEXT, b"a", fin=False) + frame(PONG, b"unsolicited") + frame(CONT, b"b"))
        f = ws.recv_frame()
        check("5_pong_between_fragments_ignored", f.opcode == TEXT and f.payload == b"ab", f)
        ws.send(frame(TEXT, b"", fin=False) + frame(CONT, b"", fin=False) + frame(CONT, b""))
        f = ws.recv_frame()
        check("5_empty_fragments_make_an_empty_message", f.opcode == TEXT and f.payload == b"", f)
        parts = [bytes([i % 256]) * 64 for i in range(1024)]
        ws.send(frame(BINARY, parts[0], fin=False) + b"".join(frame(CONT, p, fin=False) for p in parts[1:-1]) +
                frame(CONT, parts[-1]))
        f = ws.recv_frame()
        check("5_64_kib_in_1024_fragments_one_message", f.opcode == BINARY and f.payload == b"".join(parts), f)
        msg, pongs = b"", []
        for i in range(19):  # Autobahn 5.19/5.20: pings all along a long fragmented message
            ws.send(frame(TEXT if i == 0 else CONT, b"f%02d " % i, fin=False) + frame(PING, b"p%d" % i))
            msg += b"f%02d " % i
            pongs.append(ws.recv_frame())
        check("5_pings_along_a_fragmented_message_each_answered",
              [(f.opcode, f.payload) for f in pongs] == [(PONG, b"p%d" % i) for i in range(19)], pongs)
        ws.send(frame(CONT, b"end"))
        f = ws.recv_frame()
        check("5_long_fragmented_message_with_pings_one_message", f.opcode == TEXT and f.payload == msg + b"end", f)


def test_5_fragments_out_of_order_fail(ctx):
    """Autobahn 5.9-5.18: a continuation with no message started, or a new data frame while
    one is unfinished, fails the connection (RFC 6455 §5.4)."""
    fails(ctx, "5_continuation_first_fin_1_closes_1002", frame(CONT, b"orphan"), 1002)
    fails(ctx, "5_continuation_first_fin_0_closes_1002", frame(CONT, b"orphan", fin=False), 1002)
    fails(ctx, "5_continuation_after_complete_message_closes_1002", frame(TEXT, b"whole") + frame(CONT, b"late"), 1002,
          [(TEXT, b"whole")])
    fails(ctx, "5_text_while_text_unfinished_closes_1002", frame(TEXT, b"one", fin=False) + frame(TEXT, b"two"), 1002)
    fails(ctx, "5_binary_while_text_unfinished_closes_1002", frame(TEXT, b"one", fin=False) + frame(BINARY, b"2"), 1002)
    fails(ctx, "5_text_fin_0_twice_closes_1002",
          frame(TEXT, b"one", fin=False) + frame(CONT, b"two", fin=False) + frame(TEXT, b"three", fin=False), 1002)


# ---------------------------------------------------------------------------
# 6.x UTF-8
# ---------------------------------------------------------------------------
VALID_UTF8 = ["", "Hello-\u00b5@\u00df\u00f6\u00e4\u00fc\u00e0\u00e1-UTF-8!!", "\u03ba\u1f79\u03c3\u03bc\u03b5",
              "\u0000", "\u0080", "\u07ff", "\u0800", "\ud7ff", "\ue000", "\ufffd", "\ufffe", "\uffff",
              "\U00010000", "\U0001f600", "\U0010ffff"]
SPLIT_ME = "\u03ba\u1f79\u03c3\u03bc\u03b5-\u0080\u07ff\u0800\uffff\U00010000\U0010ffff"
INVALID_UTF8 = {
    "lone_continuation_80": b"\x80", "lone_continuation_bf": b"\xbf", "continuations_80_bf_80": b"\x80\xbf\x80",
    "lonely_start_c0_space": b"\xc0 ", "lonely_start_e0_space": b"\xe0 ", "lonely_start_f0_space": b"\xf0 ",
    "overlong_slash_2": b"\xc0\xaf", "overlong_slash_3": b"\xe0\x80\xaf", "overlong_slash_4": b"\xf0\x80\x80\xaf",
    "overlong_max_2": b"\xc1\xbf", "overlong_max_3": b"\xe0\x9f\xbf", "overlong_max_4": b"\xf0\x8f\xbf\xbf",
    "overlong_nul_2": b"\xc0\x80", "five_byte_form": b"\xf8\x88\x80\x80\x80", "six_byte_form": b"\xfc\x84\x80\x80\x80\x80",
    "surrogate_d800": b"\xed\xa0\x80", "surrogate_dbff": b"\xed\xaf\xbf", "surrogate_dc00": b"\xed\xb0\x80",
    "surrogate_dfff": b"\xed\xbf\xbf", "surrogate_pair": b"\xed\xa0\x80\xed\xb0\x80",
    "above_10ffff": b"\xf4\x90\x80\x80", "f5_start": b"\xf5\x80\x80\x80", "f7_start": b"\xf7\xbf\xbf\xbf",
    "fe": b"\xfe", "ff": b"\xff", "fe_fe_ff_ff": b"\xfe\xfe\xff\xff",
    "truncated_2_at_end": b"ok\xc2", "truncated_3_at_end": b"ok\xe0\xa0", "truncated_4_at_end": b"ok\xf0\x90\x80",
    "kosme_then_surrogate": "\u03ba\u1f79\u03c3\u03bc\u03b5".encode() + b"\xed\xa0\x80edited",
}


def test_6_valid_utf8_echoed(ctx):
    """Autobahn 6.1-6.2, 6.5, 6.7-6.11, 6.22-6.23: valid texts, boundary codepoints and
    noncharacters come back as they were."""
    with connect(ctx) as ws:
        for s in VALID_UTF8:
            check_echo("6_valid_text_U+%s_echoed" % "_".join("%04X" % ord(ch) for ch in s[:4]) if s and len(s) < 3
                       else "6_valid_text_%d_chars_echoed" % len(s), ws, TEXT, s)


def test_6_codepoints_split_between_fragments(ctx):
    """Autobahn 6.2.3-6.2.4, 6.6: a codepoint split between fragments is still valid: the
    text split at every byte, and one byte per fragment."""
    payload = SPLIT_ME.encode()
    with connect(ctx) as ws:
        bad = []
        for i in range(1, len(payload)):
            ws.send(frame(TEXT, payload[:i], fin=False) + frame(CONT, payload[i:]))
            f = ws.recv_frame()
            if f.opcode != TEXT or f.payload != payload:
                bad.append((i, f))
        check("6_text_split_at_every_byte_echoed", not bad, short(bad))
        ws.send(frame(TEXT, payload[:1], fin=False) + b"".join(frame(CONT, payload[i:i + 1], fin=i == len(payload) - 1)
                                                               for i in range(1, len(payload))))
        f = ws.recv_frame()
        check("6_text_one_byte_per_fragment_echoed", f.opcode == TEXT and f.payload == payload, f)


def test_6_invalid_utf8_closes_1007(ctx):
    """Autobahn 6.3-6.21: a text message that is not UTF-8 fails with 1007 (RFC 6455 §8.1)."""
    for name, payload in INVALID_UTF8.items():
        fails(ctx, "6_invalid_%s_closes_1007" % name, frame(TEXT, payload), 1007)
    whole = INVALID_UTF8["kosme_then_surrogate"]
    for i in (1, 10, 11, 12, len(whole) - 1):
        fails(ctx, "6_invalid_split_at_%d_closes_1007" % i, frame(TEXT, whole[:i], fin=False) + frame(CONT, whole[i:]),
              1007)
    fails(ctx, "6_truncated_codepoint_then_empty_final_fragment_closes_1007",
          frame(TEXT, b"ok\xe2\x82", fin=False) + frame(CONT, b""), 1007)


def fails_fast(ctx, name, first_frames, partial, announced):
    """first_frames whole, then the head of a frame announcing `announced` payload bytes and
    only `partial` of them: the server must close with 1007 without the rest (RFC 6455
    §8.1: fail as soon as the bytes are known to be invalid)."""
    tag = unique(name)
    key = os.urandom(4)
    rest = b"z" * (announced - len(partial))
    head = frame_head(CONT if first_frames else TEXT, announced, fin=True) + key
    with connect(ctx, tag=tag) as ws:
        ws.send(first_frames + head + masked(partial + rest, key)[:len(partial)])
        c = ws.read_close(timeout=3)
        check(name, c.code == 1007 and not c.before, "%s, want 1007 before the frame's other %d bytes" % (c, len(rest)))
    seen = on_close_seen(ctx, tag)
    check(name + "_on_close_1007", seen[0] == 1007, "on_close saw %s" % (seen,))


def test_6_invalid_byte_fails_before_its_frame_is_complete(ctx):
    """Autobahn 6.4.1-6.4.4 (fail-fast)."""
    kosme = "\u03ba\u1f79\u03c3\u03bc\u03b5".encode()
    fails_fast(ctx, "6_fail_fast_ff_in_a_partial_frame", b"", b"ab\xff", 4000)
    fails_fast(ctx, "6_fail_fast_above_10ffff_at_its_second_byte", b"", kosme + b"\xf4\x90", 4000)
    fails_fast(ctx, "6_fail_fast_surrogate_at_its_second_byte", b"", kosme + b"\xed\xa0", 4000)
    fails_fast(ctx, "6_fail_fast_overlong_at_its_second_byte", b"", b"x\xe0\x80", 4000)
    fails_fast(ctx, "6_fail_fast_in_the_second_fragment", frame(TEXT, kosme, fin=False), b"\xf4\x90\x80\x80", 4000)
    fails_fast(ctx, "6_fail_fast_codepoint_split_across_fragments", frame(TEXT, b"abc\xe0", fin=False), b"\x80", 4000)
    tag = unique("6_fail_fast_whole_bad_fragment")
    with connect(ctx, tag=tag) as ws:  # Autobahn 6.4.1: the message's last fragment never comes
        ws.send(frame(TEXT, kosme, fin=False) + frame(CONT, b"\xf4\x90\x80\x80", fin=False))
        c = ws.read_close(timeout=3)
        check("6_fail_fast_before_the_message_ends", c.code == 1007 and not c.before, c)


# ---------------------------------------------------------------------------
# 7.x closing
# ---------------------------------------------------------------------------
VALID_CLOSE_CODES = (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999)
INVALID_CLOSE_CODES = (0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535)


def closes_with(ctx, name, payload, echoed, on_close, before=b""):
    """Sends `before` then a close frame with `payload`; the server answers with a close
    whose code is in `echoed`, ends TCP, and on_close saw on_close (code, reason)."""
    tag = unique(name)
    with connect(ctx, tag=tag) as ws:
        ws.send(before + frame(CLOSE, payload))
        c = ws.read_close()
        check(name + "_answered", c.frame is not None and c.code in echoed and c.frame.fin, "%s, want %s" % (c, echoed))
        closed, why = ws.tcp_closed()
        check(name + "_then_tcp_closed_by_the_server", closed, why)
    seen = on_close_seen(ctx, tag)
    check(name + "_on_close", seen == on_close, "on_close saw %s, want %s" % (seen, on_close))
    return c


def test_7_close_handshake_from_the_client(ctx):
    """Autobahn 7.1.1, 7.3.1, 7.3.3-7.3.5: the server answers a close (echoing the code,
    RFC 6455 §5.5.1), then closes TCP first (§7.1.1); on_close sees the peer's code and
    reason, 1005 when there was none."""
    closes_with(ctx, "7_close_1000_after_a_message", close_body(1000), (1000,), (1000, ""), frame(TEXT, b"Hello"))
    c = closes_with(ctx, "7_close_without_payload", b"", (None, 1000), (1005, ""))
    check("7_close_without_payload_answer_has_no_other_code", c.frame is None or len(c.frame.payload) in (0, 2), c)
    closes_with(ctx, "7_close_with_reason", close_body(1000, b"Hello World!"), (1000,), (1000, "Hello World!"))
    reason = "\u00e9".encode() * 61 + b"x"  # 123 bytes of UTF-8: a payload of exactly 125
    closes_with(ctx, "7_close_with_123_byte_reason", close_body(1000, reason), (1000,), (1000, reason.decode()))
    closes_with(ctx, "7_close_inside_a_fragmented_message", close_body(1000), (1000,), (1000, ""),
                frame(TEXT, b"unfinished", fin=False))


def test_7_nothing_is_answered_after_the_close(ctx):
    """Autobahn 7.1.2-7.1.4: after the close frame the client's frames are not answered."""
    with connect(ctx) as ws:
        ws.send(frame(CLOSE, close_body(1000)) + frame(PING, b"after close") + frame(TEXT, b"after close") +
                frame(CLOSE, close_body(1000)))
        c = ws.read_close()
        check("7_frames_after_close_not_answered", c.code == 1000 and not c.before, c)
        closed, why = ws.tcp_closed()
        check("7_frames_after_close_then_tcp_closed", closed, why)


def test_7_every_valid_close_code_accepted(ctx):
    """Autobahn 7.7.1-7.7.13: codes the peer may send (RFC 6455 §7.4.1-7.4.2) are taken."""
    for code in VALID_CLOSE_CODES:
        closes_with(ctx, "7_close_code_%d" % code, close_body(code, b"r"), (code, 1000), (code, "r"))


def test_7_invalid_close_codes_fail(ctx):
    """Autobahn 7.9.1-7.9.9: codes no endpoint may send fail the connection with 1002."""
    for code in INVALID_CLOSE_CODES:
        fails(ctx, "7_close_code_%d_closes_1002" % code, frame(CLOSE, close_body(code)), 1002)


def test_7_malformed_close_payloads_fail(ctx):
    """Autobahn 7.3.2, 7.3.6, 7.5.1: a 1-byte payload and a payload over 125 bytes are
    protocol errors (1002); a reason that is not UTF-8 is 1007."""
    fails(ctx, "7_close_1_byte_payload_closes_1002", frame(CLOSE, b"\x03"), 1002)
    fails(ctx, "7_close_124_byte_reason_closes_1002", frame(CLOSE, close_body(1000, b"r" * 124)), 1002)
    fails(ctx, "7_close_reason_not_utf8_closes_1007",
          frame(CLOSE, close_body(1000, "\u03ba\u1f79\u03c3\u03bc\u03b5".encode() + b"\xed\xa0\x80edited")), 1007)


def test_7_connection_dropped_without_close_is_1006(ctx):
    """RFC 6455 §7.1.5: the TCP connection ended with no close frame: on_close sees 1006."""
    tag = unique("7_dropped")
    with connect(ctx, tag=tag) as ws:
        check_echo("7_dropped_connection_was_open", ws, TEXT, "bye")
    seen = on_close_seen(ctx, tag)
    check("7_dropped_connection_on_close_1006", seen[0] == 1006, "on_close saw %s" % (seen,))


# ---------------------------------------------------------------------------
# protocol errors outside the Autobahn list
# ---------------------------------------------------------------------------
def test_unmasked_client_frame_fails_1002(ctx):
    """RFC 6455 §5.1: a server closes the connection on an unmasked client frame."""
    fails(ctx, "unmasked_text_closes_1002", frame(TEXT, b"Hello", mask=False), 1002)
    fails(ctx, "unmasked_ping_closes_1002", frame(PING, b"Hello", mask=False), 1002)
    fails(ctx, "unmasked_after_a_masked_message", frame(TEXT, b"ok") + frame(TEXT, b"x", mask=False), 1002,
          [(TEXT, b"ok")])


def test_length_not_in_its_shortest_form_fails_1002(ctx):
    """RFC 6455 §5.2: "the minimal number of bytes MUST be used to encode the length"."""
    key = b"\1\2\3\4"
    fails(ctx, "length_16_bit_for_5_bytes_closes_1002", bytes([0x81, 0xFE]) + struct.pack("!H", 5) + key +
          masked(b"Hello", key), 1002)
    fails(ctx, "length_64_bit_for_200_bytes_closes_1002", bytes([0x82, 0xFF]) + struct.pack("!Q", 200) + key +
          masked(b"x" * 200, key), 1002)


def test_64_bit_length_with_top_bit_fails_1002(ctx):
    """RFC 6455 §5.2: the most significant bit of a 64-bit length must be 0."""
    fails(ctx, "length_top_bit_set_closes_1002", bytes([0x82, 0xFF]) + struct.pack("!Q", 1 << 63) + b"\0\0\0\0", 1002)


# ---------------------------------------------------------------------------
# 9.x limits and large messages
# ---------------------------------------------------------------------------
def test_9_large_messages_echoed(ctx):
    """Autobahn 9.1-9.2: 64 KiB, 1 MiB and (not --quick) 16 MiB minus a bit, text and binary."""
    sizes = [65536, 1 << 20] + ([] if ctx.quick else [(16 << 20) - 1024])
    with connect(ctx, timeout=30) as ws:
        for n in sizes:
            for op, name in ((TEXT, "text"), (BINARY, "binary")):
                payload = (b"\xce\xba\xe1\xbd\xb9x" if op == TEXT else bytes(range(256))) * (n // 6 if op == TEXT else
                                                                                          n // 256)
                check_echo("9_%s_%d_bytes_echoed" % (name, len(payload)), ws, op, payload, timeout=30)


def test_9_many_small_messages(ctx):
    """Autobahn 9.7-9.8: a burst of small messages all come back, in order."""
    count = 500 if ctx.quick else 5000
    with connect(ctx, timeout=20) as ws:
        msgs = [b"%d" % i for i in range(count)]
        done = threading.Event()
        got = []

        def reader():
            try:
                while len(got) < count:
                    got.append(ws.recv_frame(20).payload)
            except (OSError, ConnectionError):
                pass
            done.set()

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        ws.send(b"".join(frame(BINARY, m) for m in msgs))
        done.wait(T(30))
        check("9_%d_small_messages_echoed_in_order" % count, got == msgs, "%d of %d" % (len(got), count))


# ---------------------------------------------------------------------------
# the handshake (RFC 6455 §4.2)
# ---------------------------------------------------------------------------
def raw_handshake(ctx, path="/ws/echo", headers=None, version="HTTP/1.1", host=HOST):
    with WS(ctx.port, path, headers, version=version, host=host) as ws:
        return ws.response


def error_json_says(resp, status):
    try:
        doc = json.loads(resp.body)
    except ValueError:
        return False
    return doc.get("status") == status and bool(doc.get("error"))


def test_handshake_accept_for_the_rfc_example_key(ctx):
    """RFC 6455 §1.3: the key "dGhlIHNhbXBsZSBub25jZQ==" gives s3pPLMBiTxaQ9kYGzzhZRbK+xOo=."""
    r = raw_handshake(ctx)
    check("handshake_accept_matches_rfc_example", accept_for(KEY) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" and
          r.header("Sec-WebSocket-Accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", r.summary())
    check("handshake_101_with_upgrade_and_connection", r.status == 101 and (r.header("Upgrade") or "").lower() ==
          "websocket" and "upgrade" in (r.header("Connection") or "").lower(), r.summary())
    other = base64.b64encode(os.urandom(16)).decode()
    r = raw_handshake(ctx, headers={"Sec-WebSocket-Key": other})
    check("handshake_accept_for_a_random_key", r.header("Sec-WebSocket-Accept") == accept_for(other), r.summary())


def test_handshake_never_accepts_an_extension(ctx):
    """permessage-deflate offered is ignored: no Sec-WebSocket-Extensions (RFC 6455 §9.1),
    and no Sec-WebSocket-Protocol when none was chosen (§4.2.2)."""
    r = raw_handshake(ctx, headers={"Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits"})
    check("handshake_ignores_permessage_deflate", r.status == 101 and r.header("Sec-WebSocket-Extensions") is None,
          r.summary())
    check("handshake_no_subprotocol_header_unless_chosen", r.header("Sec-WebSocket-Protocol") is None, r.summary())


def test_handshake_accepts_tokens_in_any_case_and_lists(ctx):
    """Upgrade and Connection are case-insensitive token lists (RFC 6455 §4.2.1, RFC 9110 §7.6.1)."""
    for name, headers in {"upgrade_mixed_case": {"Upgrade": "WebSocket"},
                          "connection_list": {"Connection": "keep-alive, Upgrade"},
                          "connection_lower_case": {"Connection": "upgrade"}}.items():
        r = raw_handshake(ctx, headers=headers)
        check("handshake_accepts_" + name, r.status == 101, r.summary())


def test_handshake_refusals(ctx):
    """RFC 6455 §4.2.1-4.2.2 and the contract: 405, 426 (with Upgrade, or with
    Sec-WebSocket-Version: 13), 400, each a JSON error body."""
    with socket.create_connection((HOST, ctx.port), timeout=T(5)) as s:
        s.sendall(handshake("/ws/echo").replace(b"GET ", b"POST ", 1).replace(b"\r\n\r\n", b"\r\nContent-Length: 0"
                                                                                            b"\r\n\r\n"))
        r = Reader(s.recv).read_response()
    check("refuses_post_405_with_allow", r.status == 405 and "GET" in (r.header("Allow") or ""), r.summary())
    r = raw_handshake(ctx, headers={"Upgrade": None, "Connection": None})
    check("refuses_plain_get_426", r.status == 426 and error_json_says(r, 426), r.summary())
    check("refuses_plain_get_426_says_upgrade_websocket", (r.header("Upgrade") or "").lower() == "websocket" and
          "upgrade" in (r.header("Connection") or "").lower(), r.summary())
    r = raw_handshake(ctx, headers={"Upgrade": "h2c"})
    check("refuses_upgrade_h2c_426", r.status == 426, r.summary())
    cases = {"connection_without_upgrade": {"Connection": "keep-alive"}, "missing_key": {"Sec-WebSocket-Key": None},
             "key_not_base64": {"Sec-WebSocket-Key": "not base64!!"},
             "key_of_15_bytes": {"Sec-WebSocket-Key": base64.b64encode(b"x" * 15).decode()},
             "key_of_17_bytes": {"Sec-WebSocket-Key": base64.b64encode(b"x" * 17).decode()},
             "key_empty": {"Sec-WebSocket-Key": ""}}
    for name, headers in cases.items():
        r = raw_handshake(ctx, headers=headers)
        check("refuses_%s_400" % name, r.status == 400 and error_json_says(r, 400), r.summary())
    r = raw_handshake(ctx, version="HTTP/1.0")
    check("refuses_http_1_0_400", r.status == 400, r.summary())
    for version in ("8", "14", "abc"):
        r = raw_handshake(ctx, headers={"Sec-WebSocket-Version": version})
        check("refuses_version_%s_426_with_version_13" % version, r.status == 426 and
              r.header("Sec-WebSocket-Version") == "13" and error_json_says(r, 426), r.summary())
    r = raw_handshake(ctx, headers={"Sec-WebSocket-Version": None})
    check("refuses_missing_version", r.status in (400, 426), r.summary())
    r = raw_handshake(ctx, "/ws/nowhere")
    check("unknown_websocket_path_404", r.status == 404, r.summary())


def test_handshake_route_parameters_and_query_in_on_open(ctx):
    """on_open gets the upgrade request: route parameters (patterns as mw_get)."""
    with connect(ctx, "/ws/room/blue%20sky") as ws:
        f = ws.recv_frame()
        check("on_open_sees_route_parameter", f.opcode == TEXT and f.payload == b"blue sky", f)


def test_frames_pipelined_with_the_handshake(ctx):
    """Frames in the same packet as the upgrade request are read after the 101."""
    with WS(ctx.port, extra=frame(TEXT, b"early bird") + frame(PING, b"early ping")) as ws:
        check("pipelined_handshake_101", ws.response.status == 101, ws.response.summary())
        got = [ws.recv_frame(), ws.recv_frame()]  # RFC 6455 does not order a pong against a message
        check("frames_pipelined_with_the_handshake_answered",
              sorted((f.opcode, f.payload) for f in got) == [(TEXT, b"early bird"), (PONG, b"early ping")], got)


def test_upgrade_after_http_requests_on_the_same_connection(ctx):
    """A keep-alive connection may serve HTTP requests and then upgrade; a request
    pipelined before the upgrade is answered first."""
    with socket.create_connection((HOST, ctx.port), timeout=T(5)) as s:
        reader = Reader(s.recv)
        s.sendall(b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n")
        first = reader.read_response()
        s.sendall(b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n" + handshake("/ws/echo") + frame(TEXT, b"after http"))
        second, upgrade = reader.read_response(), reader.read_response()
        ok = first.status == 200 and second.status == 200 and upgrade.status == 101
        check("upgrade_after_keep_alive_and_pipelined_requests", ok, "%s | %s | %s" % (first.status, second.status,
                                                                                       upgrade.summary()))
        head = reader.read_exact(2)
        body = reader.read_exact(head[1])
        check("upgrade_after_http_then_frames", head[0] == 0x81 and body == b"after http", short(head + body))


def test_held_thread_and_echo_share_the_connection(ctx):
    """mw_ws_send from a thread while the worker echoes on the same connection: each
    frame whole, each stream in order."""
    with connect(ctx, "/ws/held", timeout=10) as ws:
        msgs = [bytes([i]) * (i * 97 % 20000) for i in range(200)]
        ws.send(b"".join(frame(BINARY, m) for m in msgs))
        echoes, held = [], []
        try:
            while len(echoes) < len(msgs):
                f = ws.recv_frame()
                (echoes if f.opcode == BINARY else held).append(f.payload)
        except (OSError, ConnectionError):
            pass
        numbers = [int(p[5:]) for p in held if p.startswith(b"held ")]
        check("held_and_echo_frames_whole_and_in_order", echoes == msgs and len(numbers) == len(held) and
              numbers == sorted(set(numbers)), "%d echoes right of %d; held %s" % (
                  sum(a == b for a, b in zip(echoes, msgs)), len(msgs), short(held[:5])))


def test_api_answers(ctx):
    """What mw_ws_* return for misuse, read inside the app (/ws/api)."""
    with connect(ctx, "/ws/api") as ws:
        empty, doc = ws.recv_frame(), ws.recv_frame()
        check("api_empty_binary_message_sent", empty.opcode == BINARY and empty.payload == b"", empty)
        try:
            answers = json.loads(doc.payload)
        except ValueError:
            answers = {}
        want = {"send_text_not_utf8": MW_EINVAL, "send_bad_kind": MW_EINVAL, "close_1005": MW_EINVAL,
                "close_reason_124": MW_EINVAL, "join": 0, "leave": 0, "leave_again": 0, "route_data": True,
                "route_data_in_open": True, "app": True, "subprotocol_null": True, "send_empty": 0}
        for key, value in want.items():
            check("api_" + key, answers.get(key) == value, "got %s, want %s (%s)" % (answers.get(key), value,
                                                                                    short(doc.payload)))
        check_echo("api_refused_closes_left_it_open", ws, TEXT, "still open")


# ---------------------------------------------------------------------------
# subprotocols and origins
# ---------------------------------------------------------------------------
def test_subprotocol_negotiation(ctx):
    """RFC 6455 §4.2.2: the first protocol the client offers that the server speaks."""
    cases = [("chat", "chat"), ("chat, chat.v2", "chat"), ("chat.v2, chat", "chat.v2"), ("x, chat.v2", "chat.v2"),
             ("other, third", None), (None, None)]
    for offer, chosen in cases:
        name = "subprotocol_offer_%s" % (offer or "none").replace(", ", "_then_")
        ws = WS(ctx.port, "/ws/proto", {"Sec-WebSocket-Protocol": offer} if offer else None)
        with ws:
            r = ws.response
            ok = r.status == 101 and r.header("Sec-WebSocket-Protocol") == chosen
            f = ws.recv_frame() if r.status == 101 else None
            check(name, ok and f is not None and f.payload == text(chosen or "none"),
                  "%s; first message %s" % (r.summary(), f))


def test_origins(ctx):
    """Origin checks (RFC 6455 §10.2): a list, "*", and by default the same origin or none."""
    cases = [("/ws/origins", "http://allowed.example", 101), ("/ws/origins", "https://also.example:8443", 101),
             ("/ws/origins", "http://evil.example", 403), ("/ws/origins", "https://allowed.example", 403),
             ("/ws/origins", "http://allowed.example.evil", 403), ("/ws/origins", "null", 403),
             ("/ws/any-origin", "http://anything.example", 101), ("/ws/echo", None, 101),
             ("/ws/echo", "http://%s" % HOST, 101), ("/ws/echo", "http://evil.example", 403)]
    for path, origin, status in cases:
        r = raw_handshake(ctx, path, {"Origin": origin} if origin else None)
        check("origin_%s_at_%s_%d" % (origin or "absent", path, status), r.status == status and
              (status == 101 or error_json_says(r, status)), r.summary())
    host = "%s:%d" % (HOST, ctx.port)
    r = raw_handshake(ctx, "/ws/echo", {"Origin": "http://" + host}, host=host)
    check("origin_same_host_and_port_101", r.status == 101, r.summary())
    r = raw_handshake(ctx, "/ws/echo", {"Origin": "http://%s:1" % HOST}, host=host)
    check("origin_same_host_other_port_403", r.status == 403, r.summary())


# ---------------------------------------------------------------------------
# the server's close
# ---------------------------------------------------------------------------
def test_server_initiated_close(ctx):
    """mw_ws_close: the close frame with code and reason, data after it dropped until the
    client's close, then TCP closed (RFC 6455 §7.1.2-7.1.3); on_close sees it."""
    tag = unique("server_close")
    with connect(ctx, "/ws/close?code=4001&reason=bye", tag) as ws:
        c = ws.read_close()
        check("server_close_4001_bye", c.code == 4001 and c.reason == b"bye" and not c.before, c)
        ws.send(frame(TEXT, b"dropped") + frame(PING, b"dropped") + frame(CLOSE, close_body(4001)))
        closed, why = ws.tcp_closed()
        check("server_close_data_after_it_dropped_then_tcp_closed", closed, why)
    seen = on_close_seen(ctx, tag)
    check("server_close_on_close_4001_bye", seen == (4001, "bye"), "on_close saw %s" % (seen,))
    with connect(ctx, "/ws/close?code=1000") as ws:
        c = ws.read_close()
        check("server_close_without_reason_2_byte_payload", c.code == 1000 and len(c.frame.payload) == 2, c)


def test_server_close_codes_checked(ctx):
    """mw_ws_close takes 1000-1003, 1007-1014, 3000-4999 and a reason of UTF-8, else MW_EINVAL."""
    for code in (1000, 1003, 1007, 1014, 3000, 4999):
        with connect(ctx, "/ws/close?code=%d&reason=r" % code) as ws:
            c = ws.read_close()
            check("mw_ws_close_%d_sent" % code, c.code == code and c.reason == b"r", c)
    for code in (999, 1004, 1005, 1006, 1015, 1016, 2999, 5000):
        with connect(ctx, "/ws/close?code=%d" % code) as ws:
            f = ws.recv_frame()
            check("mw_ws_close_%d_refused" % code, f.opcode == TEXT and f.payload == b"refused %d" % MW_EINVAL, f)
    with connect(ctx, "/ws/close?code=1000&reason=%FF") as ws:
        f = ws.recv_frame()
        check("mw_ws_close_reason_not_utf8_refused", f.payload == b"refused %d" % MW_EINVAL, f)
    with connect(ctx, "/ws/close?code=1000&reason=" + "r" * 123) as ws:
        c = ws.read_close()
        check("mw_ws_close_123_byte_reason_sent", c.code == 1000 and c.reason == b"r" * 123, c)


# ---------------------------------------------------------------------------
# groups, broadcast from other threads, held handles
# ---------------------------------------------------------------------------
def ticks(ws, count):
    """The numbers of the next `count` "tick N" messages."""
    out = []
    while len(out) < count:
        f = ws.recv_frame()
        if f.payload.startswith(b"tick "):
            out.append(int(f.payload[5:]))
    return out


def test_broadcast_thread_reaches_every_member_in_order(ctx):
    """A thread's mw_ws_broadcast reaches every member of the group, each in order."""
    socks = [connect(ctx, "/ws/group") for _ in range(3)]
    try:
        got = [ticks(ws, 10) for ws in socks]
        check("broadcast_every_member_gets_ticks_in_order", all(g == sorted(set(g)) for g in got), got)
    finally:
        for ws in socks:
            ws.sock.close()


def test_broadcast_from_a_member(ctx):
    """A message broadcast to a group: every member gets it once; the count is of members;
    a member that left gets nothing more."""
    group = unique("g")
    socks = [connect(ctx, "/ws/group?group=" + group) for _ in range(3)]
    try:
        a, b, c = socks
        a.send_frame(TEXT, "hello group")
        got = [a.recv_frame().payload, a.recv_frame().payload, b.recv_frame().payload, c.recv_frame().payload]
        check("broadcast_reaches_every_member", got == [b"hello group", b"took 3", b"hello group", b"hello group"], got)
        b.send_frame(TEXT, "leave")
        check("broadcast_member_leaves", b.recv_frame().payload == b"left")
        a.send_frame(BINARY, b"\x00\x01")
        got = [a.recv_frame().payload, a.recv_frame().payload, c.recv_frame()]
        check("broadcast_binary_after_a_leave_counts_2", got[:2] == [b"\x00\x01", b"took 2"] and got[2].opcode == BINARY,
              got)
        b.send_frame(TEXT, "from outside")  # b is told the count; "\x00\x01" would have come first
        check("broadcast_left_member_gets_nothing", b.recv_frame().payload == b"took 2")
    finally:
        for ws in socks:
            ws.sock.close()


def test_members_come_and_go_while_the_thread_broadcasts(ctx):
    """Connections join, read and leave (close frame or dropped) while a thread broadcasts
    every 2 ms and requests broadcast too: every open is matched by one on_close (run
    under TSan for the races)."""
    rounds = 10 if ctx.quick else 40
    before = stats(ctx.port)
    errors = []

    def churn(k):
        for i in range(rounds):
            try:
                with connect(ctx, "/ws/group") as ws:
                    ticks(ws, 2)
                    if (i + k) % 2:
                        ws.send_frame(CLOSE, close_body(1000))
                        ws.read_close()
            except (OSError, ConnectionError) as e:
                errors.append(e)

    floods = []

    def flood():  # broadcasts from workers too, beside the thread's
        while any(t.is_alive() for t in threads):
            floods.append(exchange(ctx.port, "GET", "/flood?group=room&n=20&size=64").status)

    threads = [threading.Thread(target=churn, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    flooder = threading.Thread(target=flood)
    flooder.start()
    for t in threads + [flooder]:
        t.join()
    check("churn_broadcasts_from_requests_meanwhile", floods and set(floods) == {200}, short(floods))
    want = before["opens"] + 4 * rounds
    after = wait_stats(ctx.port, lambda s: s["closes"] - before["closes"] >= 4 * rounds)
    check("churn_every_connection_got_ticks", not errors, short(errors))
    check("churn_every_open_has_its_on_close", after["opens"] == want and after["closes"] - before["closes"] ==
          4 * rounds, "opens %d (want %d), closes %d" % (after["opens"], want, after["closes"] - before["closes"]))


def test_held_handle_outlives_on_close(ctx):
    """mw_ws_hold: a thread sends while the connection is open, and after on_close gets
    MW_ECLOSED (not a crash, not a use after free) until mw_ws_release."""
    for how in ("close_frame", "dropped"):
        before = stats(ctx.port)
        with connect(ctx, "/ws/held") as ws:
            got = [ws.recv_frame().payload for _ in range(5)]
            check("held_%s_thread_sends_in_order" % how, got[0].startswith(b"held ") and
                  [int(p[5:]) for p in got] == list(range(int(got[0][5:]), int(got[0][5:]) + 5)), got)
            if how == "close_frame":
                ws.send_frame(CLOSE, close_body(1000))
                c = ws.read_close()
                check("held_close_frame_answered", c.code == 1000, c)
        after = wait_stats(ctx.port, lambda s: s["held_done"] > before["held_done"])
        check("held_%s_sends_after_on_close_get_eclosed" % how, after["held_done"] == before["held_done"] + 1 and
              after["held_last_rc"] == MW_ECLOSED, after)


# ---------------------------------------------------------------------------
# many connections
# ---------------------------------------------------------------------------
def test_many_connections_at_once(ctx):
    """Many WebSockets open together, each echoed, then closed half by close frame, half
    dropped: each gets its on_close."""
    n = 50 if ctx.quick else 300
    before = stats(ctx.port)
    socks = []
    try:
        for i in range(n):
            s = socket.create_connection((HOST, ctx.port), timeout=T(10))
            socks.append(s)
        for i, s in enumerate(socks):
            s.sendall(handshake("/ws/echo") + frame(TEXT, b"conn %d" % i))
        good = 0
        for i, s in enumerate(socks):
            data = b""
            want = len(b"conn %d" % i) + 2
            try:
                while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < want:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except OSError:
                pass
            head, _, rest = data.partition(b"\r\n\r\n")
            good += head.startswith(b"HTTP/1.1 101") and rest == bytes([0x81, want - 2]) + b"conn %d" % i
        check("many_%d_connections_all_echoed" % n, good == n, "%d of %d" % (good, n))
        for i, s in enumerate(socks):
            if i % 2:
                s.sendall(frame(CLOSE, close_body(1000)))
            else:
                s.close()
    finally:
        for s in socks:
            s.close()
    after = wait_stats(ctx.port, lambda s: s["closes"] - before["closes"] >= n, timeout=10)
    check("many_connections_every_on_close", after["closes"] - before["closes"] == n and
          after["opens"] - before["opens"] == n, "opens +%d closes +%d" % (after["opens"] - before["opens"],
                                                                          after["closes"] - before["closes"]))


# ---------------------------------------------------------------------------
# the independent client: Debian's python3-websockets
# ---------------------------------------------------------------------------
def import_websockets():
    """websockets, also from Debian's dist-packages when this python3 is not Debian's."""
    try:
        import websockets
    except ImportError:
        sys.path.append("/usr/lib/python3/dist-packages")
        try:
            import websockets
        except ImportError:
            return None
    return websockets


async def websockets_cases(ctx, websockets):
    url = "ws://%s:%d" % (HOST, ctx.port)
    tag = unique("websockets_echo")
    async with websockets.connect(url + "/ws/echo?tag=" + tag, max_size=None) as ws:
        check("websockets_no_extension_accepted", ws.response_headers.get("Sec-WebSocket-Extensions") is None,
              ws.response_headers)
        for name, msg in (("text", "h\u00e9llo \U0001f600"), ("binary", bytes(range(256))),
                          ("text_1_mib", "\u03ba" * (1 << 19)), ("binary_4_mib", os.urandom(4 << 20))):
            await ws.send(msg)
            back = await asyncio.wait_for(ws.recv(), T(20))
            check("websockets_echo_" + name, back == msg and type(back) is type(msg), short(back))
        pong = await ws.ping(b"are you there")
        await asyncio.wait_for(pong, T(5))
        check("websockets_ping_answered", pong.done())
        await ws.close(4002, "from websockets")
        check("websockets_close_answered", ws.close_code in (4002, 1000), (ws.close_code, ws.close_reason))
    seen = on_close_seen(ctx, tag)
    check("websockets_close_on_close_4002", seen == (4002, "from websockets"), seen)
    async with websockets.connect(url + "/ws/proto", subprotocols=["chat", "chat.v2"]) as ws:
        first = await asyncio.wait_for(ws.recv(), T(5))
        check("websockets_subprotocol_chosen", ws.subprotocol == "chat" and first == "chat", (ws.subprotocol, first))
    tag = unique("websockets_server_close")
    async with websockets.connect(url + "/ws/close?code=4001&reason=bye&tag=" + tag) as ws:
        try:
            await asyncio.wait_for(ws.recv(), T(5))
        except websockets.ConnectionClosed:
            pass
        await ws.wait_closed()
        check("websockets_server_close_4001_bye", ws.close_code == 4001 and ws.close_reason == "bye",
              (ws.close_code, ws.close_reason))
    try:
        async with websockets.connect(url + "/ws/origins", origin="http://evil.example"):
            status = 101
    except websockets.InvalidStatusCode as e:
        status = e.status_code
    check("websockets_origin_refused_403", status == 403, status)
    async with websockets.connect(url + "/ws/origins", origin="http://allowed.example") as ws:
        await ws.send("allowed")
        check("websockets_origin_allowed", await asyncio.wait_for(ws.recv(), T(5)) == "allowed")


def test_independent_client_python_websockets(ctx):
    """The valid paths through a strict client (it checks the accept, masking, UTF-8, codes)."""
    websockets = import_websockets()
    if not check("python3_websockets_installed", websockets is not None, "apt-get install python3-websockets"):
        return
    asyncio.run(websockets_cases(ctx, websockets))


# ---------------------------------------------------------------------------
# the tight server: small limits (TIGHT)
# ---------------------------------------------------------------------------
def test_9_message_over_the_limit_closes_1009(ctx):
    """MW_WS_MAX_MESSAGE (1024 here): a frame announcing more fails at its head (no payload
    sent); fragments adding up past it fail; exactly the limit is echoed."""
    with connect(ctx, timeout=10) as ws:
        check_echo("9_message_at_the_limit_echoed", ws, BINARY, b"x" * 1024)
    tag = unique("9_over")
    with connect(ctx, tag=tag) as ws:
        ws.send(frame_head(BINARY, 1025) + os.urandom(4))
        c = ws.read_close(3)
        check("9_frame_announcing_1025_closes_1009_at_its_head", c.code == 1009, c)
    seen = on_close_seen(ctx, tag)
    check("9_over_the_limit_on_close_1009", seen[0] == 1009, seen)
    fails(ctx, "9_text_fragments_past_the_limit_close_1009",
          frame(TEXT, b"a" * 400, fin=False) + frame(CONT, b"b" * 400, fin=False) + frame(CONT, b"c" * 400), 1009)
    fails(ctx, "9_frame_announcing_2_to_the_62_closes_1009", bytes([0x82, 0xFF]) + struct.pack("!Q", 1 << 62) +
          b"\0\0\0\0", 1009)


def test_idle_connection_pinged_then_closed(ctx):
    """MW_WS_PING_MS (300 here): a silent connection gets a ping; silent as long again, it
    is closed and on_close sees 1006."""
    tag = unique("idle")
    with connect(ctx, tag=tag) as ws:
        ws.see_pings = True
        t0 = time.monotonic()
        f = ws.recv_frame(timeout=3)
        waited = time.monotonic() - t0
        check("idle_ping_after_the_silence", f.opcode == PING and 0.2 <= waited, "%s after %.2fs" % (f, waited))
        c = ws.read_close(timeout=3)
        closed, why = ws.tcp_closed(3) if c.frame is not None else (True, "")
        gone = time.monotonic() - t0
        check("idle_unanswered_ping_closes_the_connection", closed and 0.4 <= gone < T(3),
              "%s %s after %.2fs" % (c, why, gone))
    seen = on_close_seen(ctx, tag)
    check("idle_close_on_close_1006", seen[0] == 1006, seen)


def test_idle_connection_that_answers_pings_stays_open(ctx):
    with connect(ctx) as ws:
        deadline = time.monotonic() + 1.2
        ws.sock.settimeout(0.05)
        while time.monotonic() < deadline:  # the client says nothing but pongs for 4 ping periods
            try:
                ws.recv_frame()
            except socket.timeout:
                pass
        check("idle_answered_pings_keep_it_open", len(ws.pings) >= 2, "%d pings" % len(ws.pings))
        check_echo("idle_answered_pings_then_echo", ws, TEXT, "awake")


def test_close_timeout_when_the_client_never_answers(ctx):
    """MW_WS_CLOSE_TIMEOUT_MS (300 here): the client never sends its close; TCP ends."""
    tag = unique("close_timeout")
    with connect(ctx, "/ws/close?code=4000&reason=go", tag) as ws:
        t0 = time.monotonic()
        c = ws.read_close()
        closed, why = ws.tcp_closed(3)
        took = time.monotonic() - t0
        check("close_timeout_cuts_a_silent_client", c.code == 4000 and closed and 0.2 <= took < T(2.5),
              "%s %s after %.2fs" % (c, why, took))
    seen = on_close_seen(ctx, tag)
    check("close_timeout_on_close_4000", seen == (4000, "go"), seen)


def test_client_that_never_reads(ctx):
    """A client sends and never reads: the server's memory stays flat (it stops reading
    while its writes are blocked, or mw_ws_send says MW_EAGAIN past the 64 KiB send buffer
    and the app closes it), and another client is served all along. (The buffer's bound
    itself: test_slow_group_member_closed_1008.)"""
    rss0 = rss_kib(ctx.server.proc.pid)
    before = stats(ctx.port)
    hog = connect(ctx, rcvbuf=4096, timeout=1)
    sent, stop = [0], threading.Event()

    def push():
        msg = frame(BINARY, b"h" * 1000)
        try:
            while not stop.is_set() and sent[0] < 64 << 20:
                hog.sock.sendall(msg)
                sent[0] += len(msg)
        except OSError:
            pass

    t = threading.Thread(target=push, daemon=True)
    t.start()
    served = []
    with connect(ctx) as other:
        for i in range(50):
            f = other.echo(TEXT, b"still served %d" % i)
            served.append(f.payload == b"still served %d" % i)
    check("never_reader_other_client_served_all_along", all(served), "%d of 50" % sum(served))
    t.join(T(10))  # the pusher ends when the server stops taking its bytes (a 1 s send timeout) or closes
    after = stats(ctx.port)
    stop.set()
    t.join(T(10))
    grew = rss_kib(ctx.server.proc.pid) - rss0
    hog.sock.close()
    refused = after["echo_refused"] > before["echo_refused"]
    check("never_reader_bounded_send_refused_or_reading_paused", refused or sent[0] < 64 << 20,
          "%d bytes pushed, stats %s" % (sent[0], after))
    if not ctx.quick:  # a sanitizer's allocator holds freed memory back: RSS says nothing there
        check("never_reader_memory_flat", grew < 16 * 1024, "RSS grew %d KiB after %d bytes pushed" % (grew, sent[0]))


def test_slow_group_member_closed_1008(ctx):
    """A member whose send buffer is full is closed with 1008 "too slow" and not counted;
    it still gets what it had queued."""
    group = unique("slow")
    tag = unique("slow_member")
    slow = connect(ctx, "/ws/group?group=" + group, tag, rcvbuf=4096)
    try:
        r = exchange(ctx.port, "GET", "/flood?group=%s&n=4000&size=1024" % group)
        doc = json.loads(r.body) if r.status == 200 else {}
        check("slow_member_counted_then_not", doc.get("first") == 1 and doc.get("last") == 0, r.summary())
        c = slow.read_close(timeout=10)
        frames = sum(f.opcode == BINARY for f in c.before)
        check("slow_member_gets_its_queue_then_1008_too_slow", c.code == 1008 and c.reason == b"too slow" and
              frames == len(c.before) > 0, "%d frames then %s" % (frames, c))
    finally:
        slow.sock.close()
    seen = on_close_seen(ctx, tag)
    check("slow_member_on_close_1008", seen[0] == 1008, seen)


# ---------------------------------------------------------------------------
# stopping (a server each)
# ---------------------------------------------------------------------------
def stop_with_clients(binary, grace_ms, answer):
    """SIGTERM with three WebSockets open (echo, group, held); each gets close 1001.
    Returns (server, clients, seconds from SIGTERM to exit)."""
    server = Server(command_for(binary), {"MW_THREADS": "2", "WSAPP_SHUTDOWN_GRACE_MS": str(grace_ms)})
    clients = []
    try:
        if not check("stop_%s_server_starts" % answer, server.wait_ready(), server.stderr_text()):
            return
        port = server.port
        for path in ("/ws/echo?tag=stop-echo", "/ws/group?tag=stop-group", "/ws/held?tag=stop-held"):
            ws = WS(port, path)
            clients.append(ws)
        if answer == "silent":  # and one that never reads, with a large echo stuck behind it
            hog = WS(port, "/ws/echo?tag=stop-hog", rcvbuf=4096)
            hog.send_frame(BINARY, b"h" * (4 << 20))
            clients.append(hog)
        check_echo("stop_%s_echo_before" % answer, clients[0], TEXT, "before stop")
        ticks(clients[1], 1)
        clients[2].recv_frame()
        t0 = time.monotonic()
        server.terminate()
        for ws, name in zip(clients, ("echo", "group", "held")):
            c = ws.read_close(timeout=5)
            check("stop_%s_%s_gets_close_1001" % (answer, name), c.code == 1001, c)
            if answer == "answers" and c.frame is not None:
                ws.send_frame(CLOSE, close_body(1001))
        for ws, name in zip(clients, ("echo", "group", "held")):
            closed, why = ws.tcp_closed(T(grace_ms / 1000 + 3))
            check("stop_%s_%s_then_tcp_closed" % (answer, name), closed, why)
        status = server.wait_exit(T(grace_ms / 1000 + 5))
        took = time.monotonic() - t0
        check("stop_%s_exits_0" % answer, status == 0, "status %s; %s" % (status, server.stderr_text()))
        return server, took
    finally:
        for ws in clients:
            ws.sock.close()
        server.kill()


def test_stop_closes_every_websocket_with_1001(binary):
    """SIGTERM: every WebSocket gets close 1001; the server exits as soon as the close
    handshakes are done (well before the grace), and on_close saw 1001 for each."""
    grace = int(T(5) * 1000)
    done = stop_with_clients(binary, grace, "answers")
    if not done:
        return
    server, took = done
    check("stop_answers_exits_after_the_handshakes_not_the_grace", took < grace / 2000, "%.2fs" % took)
    server.wait_stderr_closed(T(5))
    lines = " ".join(server.lines)
    for name in ("echo", "group", "held"):
        check("stop_on_close_%s_1001" % name, "wsapp: on_close stop-%s 1001" % name in lines, server.stderr_text())


def test_stop_cuts_a_client_that_never_answers_at_the_grace(binary):
    """SIGTERM with clients that never answer the close, and one that never reads (a
    large echo stuck behind it): the server exits within MW_SHUTDOWN_GRACE_MS (800 ms
    here), not later, and on_close still runs for each (the 1001 it sent)."""
    done = stop_with_clients(binary, 800, "silent")
    if not done:
        return
    server, took = done
    check("stop_silent_exits_within_the_grace", 0.5 <= took < T(4), "%.2fs" % took)
    server.wait_stderr_closed(T(5))
    check("stop_silent_on_close_for_the_client_that_never_reads", any(
        line.startswith("wsapp: on_close stop-hog 1001") for line in server.lines), server.stderr_text())


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------
MAIN_TESTS = [t for name, t in sorted(globals().items()) if name.startswith("test_") and t.__code__.co_argcount == 1
              and t.__code__.co_varnames[0] == "ctx"]
TIGHT_TESTS = [test_9_message_over_the_limit_closes_1009, test_idle_connection_pinged_then_closed,
               test_idle_connection_that_answers_pings_stays_open, test_close_timeout_when_the_client_never_answers,
               test_client_that_never_reads, test_slow_group_member_closed_1008]
MAIN_TESTS = [t for t in MAIN_TESTS if t not in TIGHT_TESTS]
STOP_TESTS = [test_stop_closes_every_websocket_with_1001, test_stop_cuts_a_client_that_never_answers_at_the_grace]


def main(argv):
    args = [a for a in argv if a != "--quick"]
    if len(args) != 1:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    quick = "--quick" in argv
    command = command_for(args[0])
    run_server_suite("wsapp", command, {"MW_THREADS": "4"}, MAIN_TESTS, quick)
    run_server_suite("wsapp_tight", command, dict(TIGHT, MW_THREADS="2"), TIGHT_TESTS, quick)
    run_each(STOP_TESTS, args[0])
    print("%d passed, %d failed" % (Tally.passed, Tally.failed), flush=True)
    return 0 if Tally.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
