"""Course tooling: build the student notebooks (course.build), visible checks (course.checks),
hidden tests (course.hidden) and the sandboxed grader (course.grade). nnlib never imports it."""
