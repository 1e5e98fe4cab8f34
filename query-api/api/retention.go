package api

// The owner's read-only view of the workspace's retention: how many days
// its events are kept and whether a legal hold is on. The operator sets
// both on the admin API (query-api/admin); the hold's reason is the
// operator's and is not shown here.

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/internal/retentionpolicy"
)

// RetentionReader serves the workspaces' retention policies (a
// *retentionpolicy.Cache, so a change shows without a restart).
type RetentionReader interface {
	For(ctx context.Context, workspace string) (retentionpolicy.Policy, error)
}

// RetentionResponse is a workspace's retention as its owner sees it.
type RetentionResponse struct {
	WorkspaceID string `json:"workspace_id"`
	// Days is how long events are kept.
	Days int `json:"days"`
	// LegalHold is true while nothing in the workspace expires.
	LegalHold bool `json:"legal_hold"`
	// ExpiresBefore is the time before which events are no longer kept
	// (now minus Days); null during a legal hold.
	ExpiresBefore *time.Time `json:"expires_before"`
}

func (a *API) retention(c echo.Context) error {
	if err := noParams(c); err != nil {
		return err
	}
	if a.o.Retention == nil {
		return &httpserver.Error{Status: http.StatusServiceUnavailable, Code: "unavailable",
			Message: "retention policies are not available on this API"}
	}
	ws := c.Param("workspace_id")
	p, err := a.o.Retention.For(c.Request().Context(), ws)
	if err != nil {
		return a.storeError("read the retention policy", err)
	}
	resp := RetentionResponse{WorkspaceID: ws, Days: p.Days, LegalHold: p.Hold}
	if !p.Hold {
		cut := p.Cutoff(a.o.Now().UTC()).Truncate(time.Second)
		resp.ExpiresBefore = &cut
	}
	return c.JSON(http.StatusOK, resp)
}
