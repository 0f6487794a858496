// Package testutil holds the helpers Herald's tests share: WaitFor polls a
// condition with a deadline (tests never sleep to synchronise), TempDB
// opens a throwaway event log that is checked for integrity when the test
// ends, Quiet is a logger that discards everything unless HERALD_TEST_LOG
// is set, and LogRecorder captures slog records for tests that assert on
// what is logged.
//
// Package log's own tests cannot use TempDB: testutil imports log, so a
// test in package log importing testutil would be an import cycle. They
// keep their own helper (mustOpen in log/log_test.go).
package testutil
