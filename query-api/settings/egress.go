package settings

import (
	"fmt"
	"maps"
	"slices"

	"github.com/audittrail/audittrail/schemas/trackingplan"
)

// checkTargets refuses a forwarding target or alert webhook URL whose host
// is written as an address the outbound policy refuses (loopback, private,
// link-local, ... in any spelling) or names the local host: a 400 naming
// the field. Names that resolve to such addresses are refused by the
// dialer when called.
func (h *handler) checkTargets(v any) error {
	urls := map[string]string{} // by field
	switch x := v.(type) {
	case *trackingplan.Forwarding:
		urls["target.url"] = x.Target.URL
		for i, t := range x.SavedTargets {
			urls[fmt.Sprintf("saved_targets[%d].url", i)] = t.URL
		}
	case *trackingplan.Alerts:
		urls["webhook_url"] = x.WebhookURL
	}
	fields := slices.Sorted(maps.Keys(urls))
	for _, field := range fields {
		u := urls[field]
		if u == "" {
			continue
		}
		if err := h.policy.CheckURL(u); err != nil {
			return &trackingplan.FieldError{Field: field, Message: err.Error() +
				" (outbound calls reach public addresses only, unless the operator allows the exact ip:port)"}
		}
	}
	return nil
}
