"""For tests only: fixtures written from the documented formats, and the conformance
suites dataset packages subclass. Nothing here is used by d3's commands."""
