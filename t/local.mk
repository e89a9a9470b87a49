# t/local.mk — the test suite (TAP). Areas add their own tests in their
# local.mk; this file holds the shared harness and cross-cutting tests.
EXTRA_DIST += t/local.mk
