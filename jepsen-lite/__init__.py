"""jepsen-lite: fault injection, histories and a linearizability checker."""
