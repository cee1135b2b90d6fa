"""kernel.protocol: payload decoding and request validation — every bad input is an error."""
import pytest

from kernel import protocol
from kernel.protocol import ProtocolError


@pytest.mark.parametrize("frame, message", [
    (b"\xff\xfe", "not UTF-8"), (b"{oops", "not JSON"), (b"[1]", "JSON object"),
    (b'"text"', "JSON object"), (b"{" + b" " * protocol.MAX_PAYLOAD + b"}", "exceeds"),
    (b"[" * 100000 + b"]" * 100000, "nested too deeply"),
    (b'{"id": "x", "limit": ' + b"9" * 5000 + b"}", "too many digits"),
    (b'{"id": "\\ud800"}', "lone surrogate"), (b'{"text": "a\\udfff"}', "lone surrogate"),
])
def test_bad_frames_are_protocol_errors(frame, message):
    with pytest.raises(ProtocolError, match=message):
        protocol.decode(frame)


@pytest.mark.parametrize("request_, message", [
    ({}, "'id' is required"), ({"id": 5}, "'id' must be of type str"),
    ({"id": "x" * 200}, "longer than 128"), ({"id": "a", "intent": "fly"}, "unknown intent"),
    ({"id": "a", "colour": 1, "text": "x"}, "unknown fields"),
    ({"id": "a", "intent": "chat"}, "needs 'text'"), ({"id": "a", "intent": "send"},
                                                       "needs 'target'"),
    ({"id": "a", "text": "x", "args": "no"}, "'args' must be of type list"),
    ({"id": "a", "intent": "revert", "target": "rect"}, "a revert request needs"),
    ({"id": "a", "intent": "versions"}, "a versions request needs 'target'"),
    ({"id": "a", "intent": "inspect", "target": "rect", "at": 5}, "'at' must be of type str"),
])
def test_bad_requests_say_what_is_wrong(request_, message):
    with pytest.raises(ProtocolError, match=message):
        protocol.validate_request(request_)


def test_a_good_request_gets_defaults():
    assert protocol.validate_request({"id": "a", "text": "hi"}) == {
        "id": "a", "text": "hi", "intent": "chat", "session": "default"}


def test_surrogate_pairs_and_escaped_backslashes_are_text():
    assert protocol.decode(b'{"t": "\\ud83d\\ude00", "u": "\\\\ud800"}') == {
        "t": "\U0001f600", "u": "\\ud800"}


def test_messages_round_trip():
    message = protocol.reply("a", persona="ROBIN", reply="é")
    assert protocol.decode(protocol.encode(message)) == message
    assert protocol.error("a", "no", retry=True)["retry"] is True
