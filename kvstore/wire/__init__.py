"""Generated gRPC and protobuf code for ``proto/kv.proto`` and ``proto/raft.proto``.

Do not edit the ``*_pb2*`` files by hand: change the .proto files and run
``make proto``. A test fails if the committed files drift from the .proto files.
"""
