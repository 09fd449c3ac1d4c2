"""MD5 digests as Amazon SQS computes them, written from AWS's description
(SQS Developer Guide, "Calculating the MD5 message digest for message
attributes"), independently of the bridge's C++ code, to check its answers.
"""

import hashlib
import struct


def md5_of_body(body: str) -> str:
    return hashlib.md5(body.encode("utf-8")).hexdigest()


def _length_prefixed(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def md5_of_attributes(attributes: dict) -> str:
    """attributes: {name: {"DataType": ..., "StringValue" | "BinaryValue": ...}}
    in boto3's shape (BinaryValue as bytes). Names sorted; each encoded as
    length-prefixed name, length-prefixed data type, one transport byte (1 for
    String and Number, 2 for Binary), length-prefixed value."""
    encoded = b""
    for name in sorted(attributes):
        value = attributes[name]
        data_type = value["DataType"]
        encoded += _length_prefixed(name.encode("utf-8"))
        encoded += _length_prefixed(data_type.encode("utf-8"))
        if data_type.startswith("Binary"):
            binary = value["BinaryValue"]
            if isinstance(binary, str):
                binary = binary.encode("utf-8")
            encoded += b"\x02" + _length_prefixed(binary)
        else:
            encoded += b"\x01" + _length_prefixed(value["StringValue"].encode("utf-8"))
    return hashlib.md5(encoded).hexdigest()


def _self_check() -> None:
    # The example of the AWS Developer Guide and of the SDKs' own tests:
    # one String attribute.
    assert md5_of_body("This is a test message") == "fafb00f5732ab283681e124bf8747ed1"
    encoded = (
        b"\x00\x00\x00\x04name" + b"\x00\x00\x00\x06String" + b"\x01" + b"\x00\x00\x00\x05value"
    )
    assert md5_of_attributes({"name": {"DataType": "String", "StringValue": "value"}}) == hashlib.md5(
        encoded
    ).hexdigest()


_self_check()
