// Package delivery is Herald's webhook dispatcher: the leader-only loops
// that POST every event matching a subscription to its endpoint as a
// signed JSON envelope, retry failures on the subscription's schedule,
// and commit every attempt, cursor and retry entry through Raft so a new
// leader continues where the old one stopped. It reads the event log
// through Source and commits through Committer; it imports neither Raft
// nor bbolt. See DESIGN.md for the state machine of a delivery and what
// happens on failover.
//
// Herald signs every request with the Standard Webhooks scheme:
//
//	webhook-id:        the event id (the receiver's dedupe key)
//	webhook-timestamp: unix seconds of the attempt
//	webhook-signature: "v1," + base64(HMAC-SHA256(key, id + "." + timestamp + "." + body))
//
// with one space-separated signature per active secret while a secret is
// being rotated, and X-Herald-Signature: "sha256=" + hex(HMAC-SHA256(key,
// body)) for receivers written for GitHub-style verification. A secret is
// "whsec_" + base64 of its key bytes.
//
// Go receivers can check a request with Verify.
package delivery
