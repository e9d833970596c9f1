"""Generated gRPC and protobuf code for ``proto/kv.proto`` and ``proto/raft.proto``.

Do not edit the ``*_pb2*`` files by hand: change the .proto files and run
``make proto``. A test fails if the committed files drift from the .proto files.
"""

from kvstore.limits import MAX_MESSAGE_BYTES

# Channel and server options every kvstore gRPC endpoint uses: messages up to
# MAX_MESSAGE_BYTES both ways (gRPC's 4 MiB default is below a full batch).
GRPC_MESSAGE_OPTIONS: list[tuple[str, int]] = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
]
