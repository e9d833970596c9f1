"""The course kit: the lab catalog, solution markers, the student release and the grader.

Student-facing (kept in a starter kit): :mod:`kvstore.course.catalog`,
:mod:`kvstore.course.markers`, :mod:`kvstore.course.cli` (``kv-course labs`` / ``test``).
Instructor-only (dropped from a starter kit, so not imported here): ``release``,
``grade``, ``bank``, ``splice``, ``isolate``, ``parity``. See docs/course-kit.md.
"""

from kvstore.course.catalog import Catalog, Lab, load_catalog
from kvstore.course.markers import MarkedRegion, MarkerProblem, scan_tree

__all__ = ["Catalog", "Lab", "MarkedRegion", "MarkerProblem", "load_catalog", "scan_tree"]
