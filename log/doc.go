// Package log is Herald's event log: an append-only, per-store sequence of
// events in one bbolt file.
//
// A store is a tenant (a shop, a plant). Each store has a gapless sequence
// starting at 1 and a SHA-256 hash chain over its events, so two copies with
// the same head hash hold the same events in the same order. Beside the
// events the file holds an id index (GET by id, and idempotent appends by
// client id), an idempotency-key index, cluster node metadata, and the last
// applied Raft index, which is written in the same transaction as the
// entries' effects so a restarted node never applies an entry twice.
//
// The package knows nothing of Raft or HTTP. Writes go through Update and
// Tx, whose methods are deterministic: every input, including ids and
// timestamps, comes from the caller. See DESIGN.md.
package log
