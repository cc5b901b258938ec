"""Malformed WebSocket traffic from a raw socket, asserting the exact close
code the server answers with (RFC 6455 §5, §7.4, §8.1), then that it
closes the TCP connection."""
import socket
import struct
import time

import ghtest
import wsutil
from wsutil import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, RawWS,
                    close_frame, frame)

ROUTES = """
  - match: { path: /ws/echo }
    websocket: { plugin: echo, max_message: 256KiB, close_timeout: 2s }
"""


class WsRawTest(ghtest.TestCase):

    def setUp(self):
        super().setUp()
        self.port = ghtest.free_port()
        self.gh = self.start(wsutil.ws_config(self.port, self.tmp, ROUTES))

    def ws(self):
        ws = RawWS(self.port)
        self.assertEqual(ws.status, 101)
        self.addCleanup(ws.close)
        return ws

    def assert_closed_with(self, data, code):
        ws = self.ws()
        ws.send(data)
        got, _ = ws.expect_close(skip_data=True)
        self.assertEqual(got, code, data[:40])
        self.assertTrue(ws.at_eof(5), "server did not close the TCP connection")

    # -- framing -----------------------------------------------------------

    def test_unmasked_frame_closes_with_1002(self):
        self.assert_closed_with(frame(OP_TEXT, "hi", mask=False), 1002)

    def test_rsv_bits_close_with_1002(self):
        for rsv in (1, 2, 4):
            self.assert_closed_with(frame(OP_TEXT, "hi", rsv=rsv), 1002)

    def test_reserved_opcodes_close_with_1002(self):
        for op in (3, 7, 0xB, 0xF):
            self.assert_closed_with(frame(op, "x"), 1002)

    def test_continuation_without_a_message_closes_with_1002(self):
        self.assert_closed_with(frame(OP_CONT, "x"), 1002)

    def test_new_message_inside_a_fragmented_one_closes_with_1002(self):
        self.assert_closed_with(frame(OP_TEXT, "a", fin=False) + frame(OP_BINARY, "b"), 1002)

    def test_fragmented_ping_closes_with_1002(self):
        self.assert_closed_with(frame(OP_PING, "p", fin=False), 1002)

    def test_control_frame_over_125_bytes_closes_with_1002(self):
        self.assert_closed_with(frame(OP_PING, b"p" * 126), 1002)

    def test_64_bit_length_with_top_bit_closes_with_1002(self):
        data = frame(OP_BINARY, b"", length=0)
        # hand-build: 127 then a length with the most significant bit set
        data = bytes([0x82, 0x80 | 127]) + struct.pack("!Q", 1 << 63) + b"\0\0\0\0"
        self.assert_closed_with(data, 1002)

    def test_message_over_max_message_closes_with_1009_before_its_payload(self):
        # only the header: the limit is decided from the length field
        data = bytes([0x82, 0x80 | 127]) + struct.pack("!Q", 1 << 30) + b"\0\0\0\0"
        self.assert_closed_with(data, 1009)

    # -- UTF-8 -------------------------------------------------------------

    def test_invalid_utf8_split_across_fragments_closes_with_1007(self):
        # "\xe2\x82" then "\x28": the third byte of a 3-byte sequence is no
        # continuation byte; each fragment alone is a valid prefix
        data = frame(OP_TEXT, b"ok \xe2\x82", fin=False) + frame(OP_CONT, b"\x28 more", fin=True)
        self.assert_closed_with(data, 1007)

    def test_invalid_utf8_fails_fast_before_the_message_ends(self):
        ws = self.ws()
        ws.send(frame(OP_TEXT, b"abc\xff", fin=False))     # never finished
        got, _ = ws.expect_close()
        self.assertEqual(got, 1007)

    def test_text_ending_inside_a_code_point_closes_with_1007(self):
        self.assert_closed_with(frame(OP_TEXT, b"abc\xc3"), 1007)

    def test_utf8_split_inside_a_code_point_across_fragments_is_fine(self):
        ws = self.ws()
        ws.send(frame(OP_TEXT, b"\xe2", fin=False) + frame(OP_CONT, b"\x82", fin=False) +
                frame(OP_CONT, b"\xac!", fin=True))
        self.assertEqual(ws.recv_message(), (OP_TEXT, "€!".encode()))

    # -- close frames ----------------------------------------------------------

    def test_bad_close_codes_close_with_1002(self):
        for code in (0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535):
            self.assert_closed_with(close_frame(code), 1002)

    def test_one_byte_close_payload_closes_with_1002(self):
        self.assert_closed_with(frame(OP_CLOSE, b"\x03"), 1002)

    def test_close_reason_not_utf8_closes_with_1007(self):
        self.assert_closed_with(close_frame(1000, b"bad \xff reason"), 1007)

    def test_valid_close_codes_are_echoed(self):
        for code in (1000, 1001, 1003, 1007, 1011, 1014, 3000, 4999):
            self.assert_closed_with(close_frame(code, b"reason"), code)

    def test_empty_close_is_answered_with_an_empty_close(self):
        ws = self.ws()
        ws.send(close_frame(None))
        self.assertEqual(ws.expect_close(), (None, b""))
        self.assertTrue(ws.at_eof(5))

    def test_a_peer_that_half_closes_after_its_close_still_gets_ours(self):
        ws = self.ws()
        ws.send(frame(OP_BINARY, bytes(200000)) + close_frame(4444))
        ws.sock.shutdown(socket.SHUT_WR)
        self.assertEqual(ws.recv_message(), (OP_BINARY, bytes(200000)))
        self.assertEqual(ws.expect_close()[0], 4444)
        self.assertTrue(ws.at_eof(5))

    def test_nothing_is_processed_after_a_close(self):
        ws = self.ws()
        ws.send(frame(OP_TEXT, "before") + close_frame(1000) + frame(OP_TEXT, "after") +
                frame(OP_PING, "p"))
        self.assertEqual(ws.recv_message(), (OP_TEXT, b"before"))
        fin, op, data = ws.recv_frame()
        self.assertEqual(op, OP_CLOSE)
        self.assertEqual(struct.unpack("!H", data[:2])[0], 1000)
        self.assertTrue(ws.at_eof(5))

    # -- control frames ----------------------------------------------------------

    def test_ping_gets_a_pong_with_the_same_payload(self):
        ws = self.ws()
        ws.send(frame(OP_PING, b"\x01\x02hello"))
        self.assertEqual(ws.recv_frame(), (True, OP_PONG, b"\x01\x02hello"))

    def test_ping_in_the_middle_of_a_fragmented_message_is_answered(self):
        ws = self.ws()
        ws.send(frame(OP_TEXT, "first ", fin=False) + frame(OP_PING, "mid") +
                frame(OP_CONT, "second", fin=True))
        self.assertEqual(ws.recv_frame(), (True, OP_PONG, b"mid"))
        self.assertEqual(ws.recv_frame(), (True, OP_TEXT, b"first second"))

    def test_unsolicited_pong_is_ignored(self):
        ws = self.ws()
        ws.send(frame(OP_PONG, "x") + frame(OP_TEXT, "still here"))
        self.assertEqual(ws.recv_message(), (OP_TEXT, b"still here"))

    def test_frames_split_at_every_byte_are_reassembled(self):
        ws = self.ws()
        data = frame(OP_TEXT, "héllo", fin=False) + frame(OP_PING, "pp") + \
            frame(OP_CONT, " wörld", fin=True) + frame(OP_BINARY, bytes(300))
        for i in range(len(data)):
            ws.send(data[i:i + 1])
        self.assertEqual(ws.recv_frame(), (True, OP_PONG, b"pp"))
        self.assertEqual(ws.recv_frame(), (True, OP_TEXT, "héllo wörld".encode()))
        self.assertEqual(ws.recv_frame(), (True, OP_BINARY, bytes(300)))

    def test_empty_messages_are_echoed(self):
        ws = self.ws()
        ws.send(frame(OP_TEXT, b"") + frame(OP_BINARY, b"", fin=False) + frame(OP_CONT, b""))
        self.assertEqual(ws.recv_frame(), (True, OP_TEXT, b""))
        self.assertEqual(ws.recv_frame(), (True, OP_BINARY, b""))

    def test_many_connections_each_get_their_own_echo(self):
        conns = [self.ws() for _ in range(50)]
        for i, ws in enumerate(conns):
            ws.send(frame(OP_TEXT, f"conn {i}"))
        for i, ws in enumerate(conns):
            self.assertEqual(ws.recv_message(), (OP_TEXT, f"conn {i}".encode()))

    # -- control frames split across reads --------------------------------
    # The parser keeps no buffer for a control frame's payload; one is lent
    # to it only while a control frame is split across reads (core/wsframe.h,
    # GH_WS_EV_NEED_BUFFER). The pauses only make separate reads likely;
    # the unit tests split at every offset.

    def pieces(self, ws, data, cuts):
        prev = 0
        for c in list(cuts) + [len(data)]:
            ws.send(data[prev:c])
            prev = c
            time.sleep(0.05)

    def test_split_ping_inside_a_message_gets_its_pong_and_split_close_its_echo(self):
        ws = self.ws()
        ws.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        big = bytes(range(125))
        data = frame(OP_TEXT, "ab", fin=False) + frame(OP_PING, big) + \
            frame(OP_CONT, "cd", fin=True)
        self.pieces(ws, data, [8 + 3, 8 + 8 + 60, 8 + 8 + 120])
        self.assertEqual(ws.recv_frame(), (True, OP_PONG, big))
        self.assertEqual(ws.recv_frame(), (True, OP_TEXT, b"abcd"))
        self.pieces(ws, close_frame(1000, b"bye now"), [6, 9])
        _, op, d = ws.recv_frame()
        self.assertEqual(op, OP_CLOSE)
        self.assertEqual(struct.unpack("!H", d[:2])[0], 1000)
        self.assertTrue(ws.at_eof(5))

    def test_split_close_with_a_bad_code_is_1002(self):
        ws = self.ws()
        ws.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.pieces(ws, close_frame(999, b"xx"), [7])
        got, _ = ws.expect_close(skip_data=True)
        self.assertEqual(got, 1002)

    def test_connections_dropped_mid_control_frame_leave_nothing_behind(self):
        """Under ASan the daemon reports a leak at exit if a lent buffer of a
        connection that went mid-frame is not freed."""
        for _ in range(20):
            ws = self.ws()
            ws.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            d = frame(OP_PING, b"x" * 100)
            self.pieces(ws, d[:60], [30])     # header and part of it, then gone
            ws.sock.close()
        ok = self.ws()                       # still serving
        ok.send(frame(OP_TEXT, "still"))
        self.assertEqual(ok.recv_message(), (OP_TEXT, b"still"))
        ok.close()
        self.assertEqual(self.gh.stop(), 0)
        log = self.gh.log()
        for bad in ("ERROR: AddressSanitizer", "LeakSanitizer", "runtime error"):
            self.assertNotIn(bad, log)


if __name__ == "__main__":
    ghtest.main()
