"""The course kit: lab catalog, solution markers (release tool and grader to come)."""
