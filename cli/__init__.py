"""The kv command-line tool."""

# Before anything imports grpc: see kvstore.wire.configure_grpc_io.
from kvstore.wire import configure_grpc_io

configure_grpc_io()
