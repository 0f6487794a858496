// Package delivery will hold Herald's webhook dispatcher (the leader-only
// delivery loops; see the webhook delivery issue). It starts with what both
// sides of a webhook share: Standard Webhooks signatures.
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
