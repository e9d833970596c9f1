"""Graders' hidden tests (never shipped in the starter kit; see docs/course-kit.md).

Conventions: one folder per lab (``tests/hidden/<lab_id_with_underscores>/``), listed in the
lab's ``hidden_tests`` in kvstore/course/labs.toml. Randomized tests are parametrized over a
fixed list of seeds and print their seed; the grader scores such a test by the fraction of
seeds that pass. Models and oracles are written from the specification, never imported from
the student-owned files. Tests go through public contracts only (the names a lab's files export,
the Engine API, RaftCore by hand or on the simulator, DurableRaftLog, KVStateMachine, and the
helpers in kvstore/lsm/testing.py and kvstore/sim/testing.py): the engine and the node are being
optimized, and their private names may change while these tests must keep working.
"""
