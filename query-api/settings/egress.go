package settings

import (
	"github.com/audittrail/audittrail/schemas/trackingplan"
)

// checkTargets refuses a forwarding target or alert webhook URL whose host
// is written as an address the outbound policy refuses (loopback, private,
// link-local, ... in any spelling) or names the local host: a 400 naming
// the field. Names that resolve to such addresses are refused by the
// dialer when called.
func (h *handler) checkTargets(v any) error {
	var field, u string
	switch x := v.(type) {
	case *trackingplan.Forwarding:
		field, u = "target.url", x.Target.URL
	case *trackingplan.Alerts:
		field, u = "webhook_url", x.WebhookURL
	}
	if u == "" {
		return nil
	}
	if err := h.policy.CheckURL(u); err != nil {
		return &trackingplan.FieldError{Field: field, Message: err.Error() +
			" (outbound calls reach public addresses only, unless the operator allows the exact ip:port)"}
	}
	return nil
}
