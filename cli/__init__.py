"""The kv command-line tool."""
