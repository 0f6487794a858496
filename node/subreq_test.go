package node

import (
	"github.com/herald-io/herald/httpapi"
	hlog "github.com/herald-io/herald/log"
)

// subRequest is a create request for a subscription on store with the
// fields p sets, as the API builds it.
func subRequest(store string, p hlog.SubPatch) httpapi.CreateSubscriptionRequest {
	return httpapi.CreateSubscriptionRequest{Store: store, Patch: p}
}
